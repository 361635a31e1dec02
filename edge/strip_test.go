package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// TestClientCookieCopiesStrippedInEverySpelling sends copies of the injected
// cookie that some framework would read as convex_jwt: none reaches the
// upstream, with or without a session, and the other cookies do.
func TestClientCookieCopiesStrippedInEverySpelling(t *testing.T) {
	g := newTestGateway(t, issuer.EdDSA, nil)
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
			if injected, err := seen.Cookie(DefaultInjectCookie); signedIn && (err != nil || injected.Value != seen.Header.Get(DefaultInjectHeader)) {
				t.Errorf("%s: the gateway's own cookie is missing: %q", name, line)
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
