package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// TestClientCookieCopiesStrippedInEverySpelling sends copies of the
// convex_jwt cookie that some framework would read as convex_jwt: none
// reaches the upstream, with or without a session, whether or not the
// gateway injects that cookie, and the other cookies do.
func TestClientCookieCopiesStrippedInEverySpelling(t *testing.T) {
	for _, setting := range []string{"", DefaultInjectCookie} {
		t.Run("inject cookie "+setting, func(t *testing.T) {
			testClientCookieCopiesStripped(t, setting)
		})
	}
}

func testClientCookieCopiesStripped(t *testing.T, setting string) {
	g := newTestGateway(t, issuer.EdDSA, nil, func(c *Config) { c.InjectCookie = setting })
	token := newSession(t, g.cfg.Store, "user_spell")
	for name, header := range map[string]string{
		"comma separated":        "a=b, convex_jwt=forged",
		"Latin-1 no-break space": "\xa0convex_jwt=forged; a=b",
		"UTF-8 no-break space":   "\u00a0convex_jwt=forged; a=b",
		"ideographic space":      "convex_jwt\u3000=forged; a=b",
		"percent-encoded":        "convex%5Fjwt=forged; a=b",
		"percent-encoded, upper": "CONVEX%5fJWT=forged; a=b",
		"encoded space":          "%20convex_jwt=forged; a=b",
		"letter case":            "Convex_JWT=forged; a=b",
	} {
		for _, signedIn := range []bool{false, true} {
			r := httptest.NewRequest(http.MethodGet, "https://app.example.com/page", nil)
			cookie := header
			if signedIn {
				cookie += "; " + DefaultSecureCookieName + "=" + token
			}
			r.Header.Set("Cookie", cookie)
			seen := serveUpstream(t, g, r)
			line := strings.Join(seen.Header["Cookie"], "; ")
			if strings.Contains(line, "forged") {
				t.Errorf("%s (signed in %v): the upstream got %q", name, signedIn, line)
			}
			if !strings.Contains(line, "a=b") {
				t.Errorf("%s (signed in %v): the other cookie was lost: %q", name, signedIn, line)
			}
			injected, err := seen.Cookie(DefaultInjectCookie)
			switch {
			case signedIn && setting != "" && (err != nil || injected.Value != seen.Header.Get(DefaultInjectHeader)):
				t.Errorf("%s: the gateway's own cookie is missing: %q", name, line)
			case setting == "" && err == nil:
				t.Errorf("%s: a convex_jwt cookie reached the upstream though none is injected: %q", name, line)
			}
		}
	}
}

// TestClientTrailersWithInjectedNamesDropped: a client cannot add the token
// header or a cookie as a request trailer.
func TestClientTrailersWithInjectedNamesDropped(t *testing.T) {
	g := newTestGateway(t, issuer.EdDSA, nil)
	var trailer http.Header
	var body string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = g.ServeHTTP(w, r, nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			b, _ := io.ReadAll(r.Body)
			body, trailer = string(b), r.Trailer.Clone()
			return nil
		}))
	}))
	defer up.Close()

	req, _ := http.NewRequest(http.MethodPost, up.URL+"/api", io.NopCloser(strings.NewReader("payload")))
	req.ContentLength = -1 // chunked, so trailers can follow
	req.Trailer = http.Header{
		"X-Convex-Token": {"forged"},
		"X_convex_token": {"forged"},
		"Cookie":         {"convex_jwt=forged"},
		"X-Other":        {"kept"},
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if body != "payload" {
		t.Fatalf("body %q did not reach the next handler", body)
	}
	for k, v := range trailer {
		if strings.Contains(strings.Join(v, ","), "forged") {
			t.Errorf("trailer %s: %v reached the next handler", k, v)
		}
	}
	if trailer.Get("X-Other") != "kept" {
		t.Errorf("an ordinary trailer was dropped: %v", trailer)
	}
}

// TestInternalCookiesNeverReachTheUpstream: the gateway's internal cookies
// (internal/cookies: link binding, OAuth flow, device), in every form a
// framework might read (realm suffix or another realm's, __Host- and
// __Secure- prefixes, letter case, percent-encoding, comma-separated),
// never reach the upstream, signed in or not, with forward_to_upstream or
// not; the app's own cookies and a forwarded session cookie do.
func TestInternalCookiesNeverReachTheUpstream(t *testing.T) {
	for _, forward := range []bool{false, true} {
		g := newTestGateway(t, issuer.EdDSA, nil, func(c *Config) { c.ForwardSessionCookie = forward })
		token := newSession(t, g.cfg.Store, "user_internal")
		var forged []string
		for _, base := range cookies.Internal {
			for _, name := range []string{
				base, base + "_abcdefgh", "__Host-" + base + "_abcdefgh", "__Secure-" + base, strings.ToUpper(base),
				"%5F_Host-" + base + "_abcdefgh", strings.Replace(base, "_", "%5f", 1), "\u00a0" + base,
			} {
				forged = append(forged, name+"=forged")
			}
		}
		for _, sep := range []string{"; ", ", "} {
			for _, signedIn := range []bool{false, true} {
				r := httptest.NewRequest(http.MethodGet, "https://app.example.com/loggedin", nil)
				line := "app=kept" + sep + strings.Join(forged, sep) + sep + "convex_authx=kept"
				if signedIn {
					line += "; " + DefaultSecureCookieName + "=" + token
				}
				r.Header.Set("Cookie", line)
				if !signedIn {
					r.URL.Path = "/open"
				}
				got := strings.Join(serveUpstream(t, g, r).Header["Cookie"], "; ")
				if strings.Contains(got, "forged") {
					t.Errorf("forward %v, sep %q, signed in %v: the upstream got %q", forward, sep, signedIn, got)
				}
				if !strings.Contains(got, "app=kept") || !strings.Contains(got, "convex_authx=kept") {
					t.Errorf("forward %v, sep %q, signed in %v: the app's own cookies were lost: %q", forward, sep, signedIn, got)
				}
				if hasSession := strings.Contains(got, token); signedIn && hasSession != forward {
					t.Errorf("forward %v: the session cookie reached the upstream: %v", forward, hasSession)
				}
			}
		}
	}
}

// TestLastUsedHintNotForwarded: the sign-in's last-used hint is the
// gateway's cookie; no spelling of it reaches the upstream.
func TestLastUsedHintNotForwarded(t *testing.T) {
	st := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = st.Close() })
	g := newTestGateway(t, issuer.EdDSA, st, func(c *Config) {
		redirects, _ := signin.NewRedirectPolicy("/", nil)
		c.SignIn = &signin.Config{Origin: testIssuer, Users: st, Redirects: redirects, Realm: "realm-a", Anonymous: &signin.AnonymousConfig{}}
	})
	names := []string{cookies.Name(cookies.LastUsed, false, "_abcdefgh"), cookies.Name(cookies.LastUsed, true, "_abcdefgh")}
	for _, header := range []string{
		names[0] + "=github; a=b",
		names[1] + "=github; a=b",
		"a=b, " + strings.ToUpper(names[1]) + "=github",
		strings.Replace(names[0], "_", "%5F", 1) + "=github; a=b",
	} {
		r := httptest.NewRequest(http.MethodGet, "https://app.example.com/page", nil)
		r.Header.Set("Cookie", header)
		line := strings.Join(serveUpstream(t, g, r).Header["Cookie"], "; ")
		if strings.Contains(line, "github") || !strings.Contains(line, "a=b") {
			t.Errorf("Cookie %q reached the upstream as %q; want only a=b", header, line)
		}
	}
}
