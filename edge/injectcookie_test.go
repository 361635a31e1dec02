package edge

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
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
		// 2.x reads the plain name on every host.
		{InjectCookieConvexAuth2, "app.example.com", true, "__convexAuthJWT"},
		{InjectCookieConvexAuth2, "[::1]:3000", false, "__convexAuthJWT"},
		{InjectCookieConvexAuth2, "localhost:3000", false, "__convexAuthJWT"},
		{"my_jwt", "app.example.com", true, "my_jwt"},
		{DefaultInjectCookie, "app.example.com", false, DefaultInjectCookie},
		// Not configured: the header alone carries the token.
		{"", "app.example.com", false, ""},
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
			if tt.want == "" {
				if got := strings.Join(cookieNames(seen), ","); got != "theme" {
					t.Fatalf("upstream cookies = %s, want only theme (no inject cookie configured)", got)
				}
				return
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

// TestEveryInjectableCookieStripped: client copies of the default cookie name
// and of every preset's spellings are removed whatever is configured, and
// of a custom name when it is; only the gateway's own cookie, when one is
// configured, reaches the upstream.
func TestEveryInjectableCookieStripped(t *testing.T) {
	names := []string{
		"convex_jwt", "CONVEX_JWT",
		"better-auth.convex_jwt", "__Secure-better-auth.convex_jwt", "better-auth-convex_jwt", "__Secure-better-auth-convex_jwt",
		"__convexAuthJWT", "__Host-__convexAuthJWT",
	}
	var forged []string
	for _, n := range names {
		forged = append(forged, n+"=forged.jwt.value")
	}
	for _, setting := range []string{"", DefaultInjectCookie, "my_jwt", InjectCookieBetterAuth, InjectCookieConvexAuth} {
		t.Run("inject cookie "+setting, func(t *testing.T) {
			g, token := presetGateway(t, setting)
			for _, signedIn := range []bool{false, true} {
				r := httptest.NewRequest(http.MethodGet, "https://app.example.com/page", nil)
				cookies := append(forged[:len(forged):len(forged)], "theme=dark")
				if setting == "my_jwt" {
					cookies = append(cookies, "MY_JWT=forged.jwt.value")
				}
				if signedIn {
					cookies = append(cookies, g.cfg.Cookie.NameFor(r)+"="+token)
				}
				r.Header.Set("Cookie", strings.Join(cookies, "; "))
				seen := serveUpstream(t, g, r)
				want := "theme"
				if signedIn && setting != "" {
					want += "," + g.injectCookie.nameFor(r)
				}
				if got := strings.Join(cookieNames(seen), ","); got != want {
					t.Fatalf("signed in %v: upstream cookies %s, want %s", signedIn, got, want)
				}
				if strings.Contains(strings.Join(seen.Header["Cookie"], ";"), "forged") {
					t.Fatalf("signed in %v: a forged value reached the upstream", signedIn)
				}
			}
		})
	}
}

// TestDefaultHeaderStrippedUnderACustomHeader: with `inject header` set to
// another name, client copies of X-Convex-Token are still removed.
func TestDefaultHeaderStrippedUnderACustomHeader(t *testing.T) {
	g := newTestGateway(t, issuer.EdDSA, nil, func(c *Config) { c.InjectHeader = "X-Token" })
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/open", nil)
	r.Header.Set("X-Convex-Token", "forged")
	r.Header.Set("X_Convex_Token", "forged")
	r.Header.Set("X-Token", "forged")
	seen := serveUpstream(t, g, r)
	for name := range seen.Header {
		if sameHeaderName(name, "X-Convex-Token") || sameHeaderName(name, "X-Token") {
			t.Fatalf("client header %s reached the upstream", name)
		}
	}
}

// TestInjectableProbesCoverEveryName: the quick first look of the strip
// finds each injectable name.
func TestInjectableProbesCoverEveryName(t *testing.T) {
	for _, name := range injectableCookies {
		if !slices.ContainsFunc(injectableProbes, func(p string) bool { return containsFold(name, p) }) {
			t.Errorf("no probe finds %s", name)
		}
	}
}
