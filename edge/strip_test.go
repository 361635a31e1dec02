package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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

// TestLastUsedHintNotForwarded: the sign-in's last-used hint and the
// failed form's flash are the gateway's cookies; no spelling of them
// reaches the upstream.
func TestLastUsedHintNotForwarded(t *testing.T) {
	st := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = st.Close() })
	g := newTestGateway(t, issuer.EdDSA, st, func(c *Config) {
		redirects, _ := signin.NewRedirectPolicy("/", nil)
		c.SignIn = &signin.Config{Origin: testIssuer, Users: st, Redirects: redirects, Realm: "realm-a", Anonymous: &signin.AnonymousConfig{}}
	})
	names := g.signIn.LastUsedCookies()
	flash := g.signIn.FlashCookies()
	for _, header := range []string{
		names[0] + "=github; a=b",
		names[1] + "=github; a=b",
		"a=b, " + strings.ToUpper(names[1]) + "=github",
		strings.Replace(names[0], "_", "%5F", 1) + "=github; a=b",
		flash[0] + "=github; a=b",
		"a=b; " + flash[1] + "=github",
		strings.ToLower(flash[1]) + "=github; a=b",
		strings.Replace(flash[0], "_", "%5F", 2) + "=github; a=b",
	} {
		r := httptest.NewRequest(http.MethodGet, "https://app.example.com/page", nil)
		r.Header.Set("Cookie", header)
		line := strings.Join(serveUpstream(t, g, r).Header["Cookie"], "; ")
		if strings.Contains(line, "github") || !strings.Contains(line, "a=b") {
			t.Errorf("Cookie %q reached the upstream as %q; want only a=b", header, line)
		}
	}
}
