package caddymodule

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// provisionPresetHandler provisions a handler on the in-process store with
// the given inject cookie setting, and a session to send requests with.
func provisionPresetHandler(t *testing.T, injectCookie string) (*Handler, string) {
	t.Helper()
	path, _ := writeKeyFile(t, issuer.EdDSA)
	h := &Handler{
		Issuer:       "https://app.example.com",
		SigningKey:   &SigningKeySource{From: "file", Path: path},
		InjectCookie: injectCookie,
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	token, _, err := h.store.Create(context.Background(), session.NewSession{UserID: "user_preset", Provider: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return h, token
}

// serveUpstream sends r through h and returns the request the next handler saw.
func serveUpstream(t *testing.T, h *Handler, r *http.Request) *http.Request {
	t.Helper()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	var seen *http.Request
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = r
		return nil
	})
	if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if seen == nil {
		t.Fatal("the request did not reach the next handler")
	}
	return seen
}

// cookieNames lists the names of the request's cookies, in order.
func cookieNames(r *http.Request) []string {
	var names []string
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	return names
}

func TestInjectCookiePresets(t *testing.T) {
	tests := []struct {
		setting, host string
		tls           bool
		want          string
	}{
		{InjectCookieBetterAuth, "app.example.com", false, "__Secure-better-auth.convex_jwt"},
		{InjectCookieBetterAuth, "app.example.com", true, "__Secure-better-auth.convex_jwt"},
		{InjectCookieBetterAuth, "localhost:3000", false, "better-auth.convex_jwt"},
		{InjectCookieBetterAuth, "localhost:3000", true, "__Secure-better-auth.convex_jwt"},
		{InjectCookieConvexAuth, "app.example.com", false, "__Host-__convexAuthJWT"},
		{InjectCookieConvexAuth, "127.0.0.1:8080", false, "__convexAuthJWT"},
		// Convex Auth decides by host alone, so TLS to localhost keeps the plain name.
		{InjectCookieConvexAuth, "localhost:8443", true, "__convexAuthJWT"},
		{"my_jwt", "app.example.com", true, "my_jwt"},
		{"", "app.example.com", false, DefaultInjectCookie},
	}
	for _, tt := range tests {
		t.Run(tt.setting+"/"+tt.host, func(t *testing.T) {
			h, token := provisionPresetHandler(t, tt.setting)
			r := httptest.NewRequest(http.MethodGet, "http://"+tt.host+"/page", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			r.Header.Set("Cookie", h.cookie.forRequest(r).name+"="+token+"; theme=dark")
			seen := serveUpstream(t, h, r)

			injected := seen.Header.Get(DefaultInjectHeader)
			if injected == "" {
				t.Fatal("no token was injected: the session was not found")
			}
			c, err := seen.Cookie(tt.want)
			if err != nil || c.Value != injected {
				t.Fatalf("upstream cookies %v: want %s holding the injected token", cookieNames(seen), tt.want)
			}
			if got := strings.Join(cookieNames(seen), ","); got != "theme,"+tt.want {
				t.Fatalf("upstream cookies = %s, want theme,%s (one copy of the token, the session cookie removed)", got, tt.want)
			}
		})
	}
}

// TestInjectCookiePresetStripsSpoofedCopies sends client-made copies of every
// name a preset could use, in other letter cases: none reaches the upstream,
// with or without a session.
func TestInjectCookiePresetStripsSpoofedCopies(t *testing.T) {
	spoofed := map[string][]string{
		InjectCookieBetterAuth: {"better-auth.convex_jwt", "BETTER-AUTH.CONVEX_JWT", "__Secure-better-auth.convex_jwt", "__secure-Better-Auth.convex_JWT"},
		InjectCookieConvexAuth: {"__convexAuthJWT", "__CONVEXAUTHJWT", "__Host-__convexAuthJWT", "__host-__convexauthjwt"},
	}
	for preset, names := range spoofed {
		for _, host := range []string{"app.example.com", "localhost:3000"} {
			t.Run(preset+"/"+host, func(t *testing.T) {
				h, token := provisionPresetHandler(t, preset)
				var forged []string
				for _, n := range names {
					forged = append(forged, n+"=forged.jwt.value")
				}

				anon := httptest.NewRequest(http.MethodGet, "http://"+host+"/open", nil)
				anon.Header.Set("Cookie", strings.Join(append(forged, "theme=dark"), "; "))
				if got := cookieNames(serveUpstream(t, h, anon)); strings.Join(got, ",") != "theme" {
					t.Fatalf("without a session the upstream got cookies %v, want only theme", got)
				}

				signed := httptest.NewRequest(http.MethodGet, "http://"+host+"/page", nil)
				sessionCookie := h.cookie.forRequest(signed).name + "=" + token
				signed.Header.Set("Cookie", strings.Join(append(forged, sessionCookie, "theme=dark"), "; "))
				seen := serveUpstream(t, h, signed)
				want := h.injectCookie.nameFor(signed)
				if got := strings.Join(cookieNames(seen), ","); got != "theme,"+want {
					t.Fatalf("with a session the upstream got cookies %s, want theme,%s", got, want)
				}
				if c, _ := seen.Cookie(want); c.Value == "forged.jwt.value" || c.Value != seen.Header.Get(DefaultInjectHeader) {
					t.Fatal("the injected cookie does not hold the gateway's token")
				}
			})
		}
	}
}
