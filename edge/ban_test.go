package edge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

func bannedUser(t *testing.T, st *session.MemoryStore) *session.User {
	t.Helper()
	u, err := st.CreateUser(context.Background(), session.NewUser{Profile: session.Profile{Email: "eve@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetBanned(context.Background(), u.ID, true); err != nil {
		t.Fatal(err)
	}
	return u
}

// A sign-in that read the user before the ban still starts no session: the
// gateway checks the mark after it creates the session and ends it.
func TestStartSessionEndsSessionOfBannedUser(t *testing.T) {
	st := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = st.Close() })
	g := newTestGateway(t, issuer.EdDSA, st, func(c *Config) { c.Users = st })
	u := bannedUser(t, st)
	stale := *u
	stale.Banned = false
	rec := httptest.NewRecorder()
	err := signInHost{g}.StartSession(rec, httptest.NewRequest("POST", testIssuer+"/auth/signin/password", nil), signin.Result{User: &stale, Provider: "password"})
	if !errors.Is(err, signin.ErrBanned) {
		t.Fatalf("StartSession = %v; want ErrBanned", err)
	}
	if len(rec.Result().Cookies()) != 0 {
		t.Fatalf("cookies set: %v", rec.Result().Cookies())
	}
	if list, err := st.List(context.Background(), u.ID); err != nil || len(list) != 0 {
		t.Fatalf("sessions left: %d, %v", len(list), err)
	}
}

// The app's Convex-Auth-Sign-In of a banned user is refused: a page for a
// browser, JSON for fetch, no session either way.
func TestUpstreamSignInOfBannedUserRefused(t *testing.T) {
	st := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = st.Close() })
	u := bannedUser(t, st)
	g := newTestGateway(t, issuer.EdDSA, st, func(c *Config) { c.TrustUpstreamSignIn = true; c.Users = st })
	app := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set(HeaderUpstreamSignIn, `{"sub":"`+r.URL.Query().Get("user")+`"}`)
		_, _ = w.Write([]byte("signed in"))
		return nil
	})
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"page", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, "banned from signing in"},
		{"fetch", map[string]string{"Sec-Fetch-Mode": "cors"}, `"error":"banned"`},
	} {
		req := httptest.NewRequest("POST", testIssuer+"/api/login?user="+u.ID, nil)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		if err := g.ServeHTTP(rec, req, app); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), tc.want) || strings.Contains(rec.Body.String(), "signed in") {
			t.Fatalf("%s: %d %s", tc.name, rec.Code, rec.Body.String())
		}
		for _, c := range rec.Result().Cookies() {
			if c.Value != "" {
				t.Fatalf("%s: cookie %s set", tc.name, c.Name)
			}
		}
	}
	if list, _ := st.List(context.Background(), u.ID); len(list) != 0 {
		t.Fatalf("sessions left: %d", len(list))
	}
	// A user the app knows and the gateway has no record of signs in.
	req := httptest.NewRequest("POST", testIssuer+"/api/login?user=app-user-1", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	rec := httptest.NewRecorder()
	if err := g.ServeHTTP(rec, req, app); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("unrecorded user: %d %v", rec.Code, err)
	}
}
