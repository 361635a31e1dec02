package signin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// FuzzOAuthCallback sends arbitrary callback parameters and flow cookies to
// /auth/callback/github, with one real flow started so the state check can
// be passed: nothing panics, no session starts (the provider's endpoints
// are unreachable, so no code can be redeemed), and the answer is an error
// page or a redirect back to sign in.
func FuzzOAuthCallback(f *testing.F) {
	store := session.NewMemoryStore(session.Options{})
	f.Cleanup(func() { _ = store.Close() })
	host := &testHost{Host: &signintest.Host{Store: store}}
	github, err := provider.NewGitHub(provider.GitHubConfig{Common: provider.Common{
		ClientID: "client", ClientSecret: "secret",
		AuthURL: "http://127.0.0.1:1/auth", TokenURL: "http://127.0.0.1:1/token"}, APIURL: "http://127.0.0.1:1/api",
	})
	if err != nil {
		f.Fatal(err)
	}
	cfg := Config{Origin: "http://app.example", Users: store, Host: host, OAuth: []provider.OAuth{github}}
	cfg.Redirects, _ = NewRedirectPolicy("/", nil)
	svc, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}

	// A real flow: its state and flow cookie seed the corpus.
	rec := httptest.NewRecorder()
	svc.Handle(rec, httptest.NewRequest("GET", "http://app.example/auth/signin/github?redirectTo=/x", nil))
	loc, _ := url.Parse(rec.Header().Get("Location"))
	state := loc.Query().Get("state")
	var flow string
	for _, c := range rec.Result().Cookies() {
		if c.Value != "" {
			flow = c.Name + "=" + c.Value
		}
	}
	if state == "" || flow == "" {
		f.Fatalf("starting a flow gave Location %q and cookies %v", loc, rec.Result().Cookies())
	}
	f.Add("state="+state+"&code=abc", flow)
	f.Add("state="+state+"&error=access_denied", flow)
	f.Add("state=x&code=y", flow)
	f.Add("state="+state+"&state=other&code=%00", "")
	f.Add("code=abc", flow+"; "+flow)

	f.Fuzz(func(t *testing.T, query, cookie string) {
		req := httptest.NewRequest("GET", "http://app.example/auth/callback/github", nil)
		req.URL.RawQuery = query
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		if !svc.Handle(rec, req) {
			t.Fatal("the callback path was not handled")
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == testSessionCookie && c.Value != "" {
				t.Fatalf("a session started from callback %q", query)
			}
		}
		if rec.Code == http.StatusOK {
			t.Fatalf("callback %q answered 200", query)
		}
		if loc := rec.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") {
			t.Fatalf("callback %q redirected off-site to %q", query, loc)
		}
	})
}
