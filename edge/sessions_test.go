package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// bothStores is a store that keeps users too: either backend.
type bothStores interface {
	session.Store
	session.UserStore
}

var edgePrefixes atomic.Int64

// eachStore runs the test on the in-process store and on a real
// redis-server, each on the given clock.
func eachStore(t *testing.T, run func(t *testing.T, st bothStores, clock *testclock.Clock)) {
	t.Run("memory", func(t *testing.T) {
		clock := testclock.New(time.Now().Truncate(time.Millisecond))
		st := session.NewMemoryStore(session.Options{Now: clock.Now})
		t.Cleanup(func() { _ = st.Close() })
		run(t, st, clock)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.StartServer(t)
		clock := testclock.New(time.Now().Truncate(time.Millisecond))
		st, err := session.NewRedisStore(session.RedisConfig{URL: srv.URL(), KeyPrefix: fmt.Sprintf("edge%d:", edgePrefixes.Add(1))}, session.Options{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		run(t, st, clock)
	})
}

// call sends a request as the site's own page (sameOrigin) or another
// site's, with the session cookie token (if any).
func call(t *testing.T, g *Gateway, method, path, token string, sameOrigin bool) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, testIssuer+path, nil)
	if token != "" {
		r.AddCookie(&http.Cookie{Name: g.cfg.Cookie.forRequest(r).name, Value: token})
	}
	if sameOrigin {
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	} else {
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Origin", "https://evil.example")
	}
	w := httptest.NewRecorder()
	if err := g.ServeHTTP(w, r, nextNoop); err != nil {
		t.Fatal(err)
	}
	return w
}

func createWithUA(t *testing.T, st session.Store, userID, ua string) (string, *session.Session) {
	t.Helper()
	tok, sess, err := st.Create(context.Background(), session.NewSession{UserID: userID, Provider: "password", UserAgent: ua})
	if err != nil {
		t.Fatal(err)
	}
	return tok, sess
}

func TestSessionsJSON(t *testing.T) {
	eachStore(t, func(t *testing.T, st bothStores, clock *testclock.Clock) {
		g := newTestGateway(t, issuer.EdDSA, st)
		ctx := context.Background()
		tok1, s1 := createWithUA(t, st, "ada", "Firefox/132.0")
		clock.Advance(time.Second)
		_, s2 := createWithUA(t, st, "ada", "Chrome/131.0")
		clock.Advance(time.Second)
		_, s3 := createWithUA(t, st, "ada", "")
		_, bobs := createWithUA(t, st, "bob", "Safari")

		w := call(t, g, http.MethodGet, "/auth/sessions", tok1, true)
		if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("GET: status %d, Cache-Control %q", w.Code, w.Header().Get("Cache-Control"))
		}
		var got struct {
			Sessions []session.View `json:"sessions"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		want := []session.View{session.NewView(s1, true), session.NewView(s2, false), session.NewView(s3, false)}
		if fmt.Sprint(got.Sessions) != fmt.Sprint(want) {
			t.Fatalf("sessions\n got %+v\nwant %+v", got.Sessions, want)
		}
		if !strings.Contains(w.Body.String(), `"userAgent":"Firefox/132.0"`) || !strings.Contains(w.Body.String(), `"createdAt":`+fmt.Sprint(s1.CreatedAt.UnixMilli())) {
			t.Fatalf("JSON %s lacks the User-Agent or the time in Unix ms", w.Body)
		}

		// Cross-site, signed out, or the wrong method: refused, nothing changes.
		for _, tt := range []struct {
			method, path, token string
			same                bool
			status              int
		}{
			{http.MethodGet, "/auth/sessions", tok1, false, http.StatusForbidden},
			{http.MethodDelete, "/auth/sessions", tok1, false, http.StatusForbidden},
			{http.MethodDelete, "/auth/sessions/" + s2.ID, tok1, false, http.StatusForbidden},
			{http.MethodGet, "/auth/sessions", "", true, http.StatusUnauthorized},
			{http.MethodDelete, "/auth/sessions", "", true, http.StatusUnauthorized},
			{http.MethodPost, "/auth/sessions", tok1, true, http.StatusMethodNotAllowed},
			{http.MethodGet, "/auth/sessions/" + s2.ID, tok1, true, http.StatusMethodNotAllowed},
			{http.MethodDelete, "/auth/sessions/" + bobs.ID, tok1, true, http.StatusNotFound},
			{http.MethodDelete, "/auth/sessions/junk", tok1, true, http.StatusNotFound},
		} {
			if w := call(t, g, tt.method, tt.path, tt.token, tt.same); w.Code != tt.status {
				t.Fatalf("%s %s (same origin %v): status %d; want %d: %s", tt.method, tt.path, tt.same, w.Code, tt.status, w.Body)
			}
		}
		if l, _ := st.List(ctx, "ada"); len(l) != 3 {
			t.Fatalf("%d sessions after refused calls; want 3", len(l))
		}
		if l, _ := st.List(ctx, "bob"); len(l) != 1 {
			t.Fatal("another user's session ended")
		}

		if w := call(t, g, http.MethodDelete, "/auth/sessions/"+s2.ID, tok1, true); w.Code != http.StatusNoContent {
			t.Fatalf("DELETE one: status %d: %s", w.Code, w.Body)
		}
		assertLive(t, st, "ada", s1.ID, s3.ID)
		w = call(t, g, http.MethodDelete, "/auth/sessions", tok1, true)
		if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"ended":1}` {
			t.Fatalf("DELETE all others: status %d: %s", w.Code, w.Body)
		}
		assertLive(t, st, "ada", s1.ID)
		// Ending the current session clears its cookie.
		w = call(t, g, http.MethodDelete, "/auth/sessions/"+s1.ID, tok1, true)
		if w.Code != http.StatusNoContent || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("DELETE current: status %d, Set-Cookie %q", w.Code, w.Header().Get("Set-Cookie"))
		}
		assertLive(t, st, "ada")
	})
}

func assertLive(t *testing.T, st session.Store, userID string, ids ...string) {
	t.Helper()
	l, err := st.List(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range l {
		got = append(got, s.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("live sessions %v; want %v", got, ids)
	}
}

// Every sign-in the gateway starts records the browser's User-Agent.
func TestSignInRecordsTheUserAgent(t *testing.T) {
	eachStore(t, func(t *testing.T, st bothStores, _ *testclock.Clock) {
		g := newTestGateway(t, issuer.EdDSA, st)
		r := httptest.NewRequest(http.MethodPost, testIssuer+"/auth/signin/password", nil)
		r.Header.Set("User-Agent", strings.Repeat("Mozilla/5.0 ", 40))
		err := signInHost{g}.StartSession(httptest.NewRecorder(), r, signin.Result{User: &session.User{ID: "ada"}, Provider: "password"})
		if err != nil {
			t.Fatal(err)
		}
		l, _ := st.List(context.Background(), "ada")
		if len(l) != 1 || !strings.HasPrefix(l[0].UserAgent, "Mozilla/5.0 Mozilla") || len(l[0].UserAgent) > session.MaxUserAgentBytes {
			t.Fatalf("sessions %+v; want one with the User-Agent, capped", l)
		}

		srv := upstreamSignInServer(t, func(c *Config) { c.Store = st })
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/auth/login", nil)
		req.Header.Set("User-Agent", "AppBrowser/1.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		l, _ = st.List(context.Background(), "user_app")
		if len(l) != 1 || l[0].UserAgent != "AppBrowser/1.0" {
			t.Fatalf("upstream sign-in sessions %+v; want the User-Agent recorded", l)
		}
	})
}

// A guest in use stays; one unused for its TTL is removed, and its
// session with it, at the next token.
func TestGuestExpiresUnlessUsed(t *testing.T) {
	eachStore(t, func(t *testing.T, st bothStores, clock *testclock.Clock) {
		const ttl = time.Hour
		g := newTestGateway(t, issuer.EdDSA, st, func(c *Config) {
			redirects, _ := signin.NewRedirectPolicy("/", nil)
			c.SignIn = &signin.Config{Origin: testIssuer, Users: st, Redirects: redirects, Anonymous: &signin.AnonymousConfig{TTL: ttl}}
		})
		ctx := context.Background()
		guest, err := st.CreateUser(ctx, session.NewUser{Anonymous: true, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := st.Create(ctx, session.NewSession{UserID: guest.ID, Provider: signin.ProviderAnonymous})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			clock.Advance(ttl - 10*time.Minute)
			if w := call(t, g, http.MethodGet, "/auth/token", tok, true); w.Code != http.StatusOK {
				t.Fatalf("a guest in use: /auth/token status %d: %s", w.Code, w.Body)
			}
		}
		var claims map[string]any
		w := call(t, g, http.MethodGet, "/auth/token", tok, true)
		var body struct{ Token string }
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if err := json.Unmarshal(decodeSegment(t, body.Token), &claims); err != nil {
			t.Fatal(err)
		}
		if claims["sub"] != guest.ID || claims["email"] != nil || claims["name"] != nil {
			t.Fatalf("a guest's claims %v; want sub %s and no email or name", claims, guest.ID)
		}

		clock.Advance(ttl + time.Minute)
		if w := call(t, g, http.MethodGet, "/auth/token", tok, true); w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("an expired guest: /auth/token status %d; want 401 and the cookie cleared", w.Code)
		}
		if _, err := st.Lookup(ctx, tok); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the expired guest's session: %v; want ended", err)
		}
	})
}

func decodeSegment(t *testing.T, jwt string) []byte {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}
