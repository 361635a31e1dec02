package edge

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"regexp"
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
		{InjectCookieBetterAuth, "[::1]:3000", false, "better-auth.convex_jwt"},
		{InjectCookieConvexAuth, "app.example.com", false, "__Host-__convexAuthJWT"},
		{InjectCookieConvexAuth, "127.0.0.1:8080", false, "__convexAuthJWT"},
		// Convex Auth decides by host alone, so TLS to localhost keeps the plain name.
		{InjectCookieConvexAuth, "localhost:8443", true, "__convexAuthJWT"},
		// Its test wants "localhost:" or "127.0.0.1:" and a port, anywhere
		// in the Host: other loopback hosts get __Host-.
		{InjectCookieConvexAuth, "app.localhost:3000", false, "__convexAuthJWT"},
		{InjectCookieConvexAuth, "localhost", false, "__Host-__convexAuthJWT"},
		{InjectCookieConvexAuth, "[::1]:3000", false, "__Host-__convexAuthJWT"},
		{InjectCookieConvexAuth, "127.0.0.2:3000", false, "__Host-__convexAuthJWT"},
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
		InjectCookieBetterAuth: {
			"better-auth.convex_jwt", "BETTER-AUTH.CONVEX_JWT", "__Secure-better-auth.convex_jwt", "__secure-Better-Auth.convex_JWT",
			"better-auth-convex_jwt", "__Secure-better-auth-convex_jwt", "Better-Auth-Convex_JWT",
		},
		InjectCookieConvexAuth: {"__convexAuthJWT", "__CONVEXAUTHJWT", "__Host-__convexAuthJWT", "__host-__convexauthjwt"},
	}
	for preset, names := range spoofed {
		for _, host := range []string{"app.example.com", "localhost:3000", "[::1]:3000"} {
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

// TestConvexAuthLocalHostIsTheHelpersRegexp compares the gateway's test with
// @convex-dev/auth's own, /(localhost|127\.0\.0\.1):\d+/ (0.0.95,
// server/utils.js isLocalHost).
func TestConvexAuthLocalHostIsTheHelpersRegexp(t *testing.T) {
	helper := regexp.MustCompile(`(localhost|127\.0\.0\.1):\d+`)
	for _, host := range []string{
		"localhost:3000", "localhost", "localhost:", "localhost:x1", "LOCALHOST:3000", "Localhost:3000",
		"127.0.0.1:8080", "127.0.0.1", "127.0.0.2:8080", "[::1]:8080", "[::1]",
		"app.localhost:3000", "app.localhost", "localhost.example.com:443", "notlocalhost:1",
		"127.0.0.1.example.com:443", "x127.0.0.1:9", "localhost:localhost:1", "localhost:\u0661",
		"app.example.com", "app.example.com:8443", "", ":3000",
	} {
		if got, want := convexAuthLocalHost(host), helper.MatchString(host); got != want {
			t.Errorf("convexAuthLocalHost(%q) = %v, the helper's test says %v", host, got, want)
		}
	}
}

// FuzzConvexAuthLocalHost: the gateway's test agrees with the helper's
// regexp on any Host.
func FuzzConvexAuthLocalHost(f *testing.F) {
	for _, seed := range []string{"localhost:3000", "localhost", "[::1]:3000", "app.localhost:1", "127.0.0.1:", "localhost:localhost:2"} {
		f.Add(seed)
	}
	helper := regexp.MustCompile(`(localhost|127\.0\.0\.1):\d+`)
	f.Fuzz(func(t *testing.T, host string) {
		if got, want := convexAuthLocalHost(host), helper.MatchString(host); got != want {
			t.Fatalf("convexAuthLocalHost(%q) = %v, the helper's test says %v", host, got, want)
		}
	})
}
