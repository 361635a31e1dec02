package edge

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// presetGateway builds a gateway with the given inject cookie setting, and
// a session to send requests with.
func presetGateway(t *testing.T, injectCookie string) (*Gateway, string) {
	t.Helper()
	g := newTestGateway(t, issuer.EdDSA, nil, func(c *Config) { c.InjectCookie = injectCookie })
	return g, newSession(t, g.cfg.Store, "user_preset")
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
			g, token := presetGateway(t, tt.setting)
			r := httptest.NewRequest(http.MethodGet, "http://"+tt.host+"/page", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			r.Header.Set("Cookie", g.cfg.Cookie.NameFor(r)+"="+token+"; theme=dark")
			seen := serveUpstream(t, g, r)

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
				g, token := presetGateway(t, preset)
				var forged []string
				for _, n := range names {
					forged = append(forged, n+"=forged.jwt.value")
				}

				anon := httptest.NewRequest(http.MethodGet, "http://"+host+"/open", nil)
				anon.Header.Set("Cookie", strings.Join(append(forged, "theme=dark"), "; "))
				if got := cookieNames(serveUpstream(t, g, anon)); strings.Join(got, ",") != "theme" {
					t.Fatalf("without a session the upstream got cookies %v, want only theme", got)
				}

				signed := httptest.NewRequest(http.MethodGet, "http://"+host+"/page", nil)
				sessionCookie := g.cfg.Cookie.NameFor(signed) + "=" + token
				signed.Header.Set("Cookie", strings.Join(append(forged, sessionCookie, "theme=dark"), "; "))
				seen := serveUpstream(t, g, signed)
				want := g.injectCookie.nameFor(signed)
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
