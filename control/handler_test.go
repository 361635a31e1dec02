package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/convex-auth/caddy-convex-auth/control"
	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/session"
)

const testSecret = "0123456789abcdef0123456789abcdef-admin"

// store is a realm's store: both kinds implement all of it.
type store interface {
	session.Store
	session.UserStore
	session.Banner
	session.SecondFactors
}

type backend struct {
	name string
	open func(t *testing.T, realm string) store
}

func backends(t *testing.T) []backend {
	return []backend{
		{"memory", func(t *testing.T, realm string) store {
			s := session.NewMemoryStore(session.Options{Realm: realm})
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"redis", func(t *testing.T, realm string) store {
			srv := redistest.StartServer(t)
			s, err := session.NewRedisStore(session.RedisConfig{URL: srv.URL(), CacheSize: -1}, session.Options{Realm: realm})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
}

func realmOf(name, issuer string, s store) control.Realm {
	return control.Realm{Name: name, Issuers: []string{issuer}, Sessions: s, Users: s, Factors: s}
}

type fixture struct {
	t       *testing.T
	h       http.Handler
	s       store
	logs    *observer.ObservedLogs
	changes []control.Change
}

func newFixture(t *testing.T, b backend, secret string) *fixture {
	core, logs := observer.New(zap.InfoLevel)
	f := &fixture{t: t, s: b.open(t, "test-realm"), logs: logs}
	realm := realmOf("test-realm", "https://app.example.com", f.s)
	h, err := control.NewHandler(control.Config{
		Prefix: "/auth/admin",
		Realms: func() []control.Realm { return []control.Realm{realm} },
		Secret: secret,
		Logger: zap.New(core),
		OnChange: func(_ context.Context, _ control.Realm, c control.Change) {
			f.changes = append(f.changes, c)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

// call sends method path with the right secret and decodes the JSON answer.
func (f *fixture) call(method, path string, hdr ...string) (int, map[string]any) {
	f.t.Helper()
	req := httptest.NewRequest(method, "https://app.example.com"+path, nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		f.t.Fatalf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		f.t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, rec.Body.String())
	}
	if rec.Code >= 400 {
		if _, ok := body["error"].(string); !ok {
			f.t.Fatalf("%s %s: error answer without an error code: %v", method, path, body)
		}
		if _, ok := body["message"].(string); !ok {
			f.t.Fatalf("%s %s: error answer without a message: %v", method, path, body)
		}
	}
	return rec.Code, body
}

func (f *fixture) signIn(userID string) (token string, sess *session.Session) {
	f.t.Helper()
	token, sess, err := f.s.Create(context.Background(), session.NewSession{UserID: userID, Provider: "github", UserAgent: "test-browser"})
	if err != nil {
		f.t.Fatal(err)
	}
	return token, sess
}

func (f *fixture) user(email string) *session.User {
	f.t.Helper()
	ctx := context.Background()
	u, err := f.s.CreateUser(ctx, session.NewUser{Profile: session.Profile{Email: email, EmailVerified: true, Name: "Ada"}})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.s.CreateAccount(ctx, session.Account{Provider: "github", ProviderAccountID: "gh-" + u.ID, UserID: u.ID, Secret: "hash-never-shown"}); err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) live(token string) bool {
	_, err := f.s.Lookup(context.Background(), token)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		f.t.Fatal(err)
	}
	return err == nil
}

func TestOperations(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b, testSecret)
			u := f.user("ada@example.com")
			t1, s1 := f.signIn(u.ID)
			t2, s2 := f.signIn(u.ID)
			t3, _ := f.signIn(u.ID)

			code, body := f.call("GET", "/auth/admin/users?email=ADA@example.com")
			if code != 200 || body["user"].(map[string]any)["id"] != u.ID {
				t.Fatalf("find by email = %d %v", code, body)
			}
			code, body = f.call("GET", "/auth/admin/users/"+u.ID)
			user := body["user"].(map[string]any)
			accts := body["accounts"].([]any)
			if code != 200 || user["email"] != "ada@example.com" || user["banned"] != false || len(accts) != 1 ||
				accts[0].(map[string]any)["provider"] != "github" || strings.Contains(mustJSON(body), "hash-never-shown") {
				t.Fatalf("get user = %d %v", code, body)
			}
			code, body = f.call("GET", "/auth/admin/users/"+u.ID+"/sessions")
			list := body["sessions"].([]any)
			if code != 200 || len(list) != 3 {
				t.Fatalf("list sessions = %d %v", code, body)
			}
			var first map[string]any // three sessions made in one millisecond may list in any order
			for _, v := range list {
				if v.(map[string]any)["id"] == s1.ID {
					first = v.(map[string]any)
				}
			}
			if first == nil || first["current"] != false || first["userAgent"] != "test-browser" || first["provider"] != "github" || first["createdAt"] == nil {
				t.Fatalf("sessions = %v; want %s in the /auth/sessions shape", list, s1.ID)
			}

			code, body = f.call("DELETE", "/auth/admin/users/"+u.ID+"/sessions/"+s1.ID)
			if code != 200 || body["ended"] != float64(1) || f.live(t1) {
				t.Fatalf("end one = %d %v, still live %v", code, body, f.live(t1))
			}
			code, _ = f.call("DELETE", "/auth/admin/users/"+u.ID+"/sessions/"+s1.ID)
			if code != 404 {
				t.Fatalf("ending an ended session = %d, want 404", code)
			}
			code, body = f.call("DELETE", "/auth/admin/users/"+u.ID+"/sessions?except="+s2.ID)
			if code != 200 || body["ended"] != float64(1) || !f.live(t2) || f.live(t3) {
				t.Fatalf("end all but one = %d %v; kept live %v", code, body, f.live(t2))
			}

			code, body = f.call("POST", "/auth/admin/users/"+u.ID+"/ban")
			if code != 200 || body["ended"] != float64(1) || body["user"].(map[string]any)["banned"] != true || f.live(t2) {
				t.Fatalf("ban = %d %v", code, body)
			}
			if got, _ := f.s.GetUser(context.Background(), u.ID); !got.Banned {
				t.Fatal("the store does not have the user banned")
			}
			_, body = f.call("GET", "/auth/admin/users/"+u.ID)
			if body["user"].(map[string]any)["banned"] != true || body["user"].(map[string]any)["bannedAt"] == nil {
				t.Fatalf("get banned user = %v", body)
			}
			code, body = f.call("DELETE", "/auth/admin/users/"+u.ID+"/ban")
			if code != 200 || body["user"].(map[string]any)["banned"] != false {
				t.Fatalf("unban = %d %v", code, body)
			}

			t4, _ := f.signIn(u.ID)
			// A pending reset link of the user goes with it.
			if err := f.s.PutOnceFor(context.Background(), u.ID, "reset-link", []byte("r"), time.Hour); err != nil {
				t.Fatal(err)
			}
			code, body = f.call("DELETE", "/auth/admin/users/"+u.ID)
			if code != 200 || body["deleted"] != true || f.live(t4) {
				t.Fatalf("delete = %d %v", code, body)
			}
			if _, err := f.s.TakeOnce(context.Background(), "reset-link"); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("the user's pending link after delete: %v; want ErrNotFound", err)
			}
			if _, err := f.s.GetUser(context.Background(), u.ID); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("user after delete: %v", err)
			}
			for _, path := range []string{"/auth/admin/users/" + u.ID, "/auth/admin/users/" + u.ID + "/sessions", "/auth/admin/users?email=ada@example.com"} {
				if code, body := f.call("GET", path); code != 404 || body["error"] != "user_not_found" {
					t.Fatalf("GET %s after delete = %d %v; want 404 user_not_found", path, code, body)
				}
			}

			ops := []string{}
			for _, c := range f.changes {
				ops = append(ops, c.Op)
			}
			if got := strings.Join(ops, ","); got != "end_session,end_sessions,ban,unban,delete_user" {
				t.Fatalf("changes told = %s", got)
			}
			// Every call is audited with its operation and user, never the secret.
			if n := f.logs.FilterField(zap.String("op", control.OpBan)).FilterField(zap.String("user_id", u.ID)).Len(); n != 1 {
				t.Fatalf("audit lines for the ban: %d", n)
			}
			for _, e := range f.logs.All() {
				if strings.Contains(mustJSON(e.ContextMap()), testSecret) || strings.Contains(e.Message, testSecret) {
					t.Fatalf("the secret was logged: %v", e)
				}
			}
		})
	}
}

// A user the app signed in upstream has sessions but no record.
func TestUserKnownBySessionsOnly(t *testing.T) {
	f := newFixture(t, backends(t)[0], testSecret)
	tok, _ := f.signIn("app-user-7")
	if code, body := f.call("GET", "/auth/admin/users/app-user-7"); code != 200 || body["user"].(map[string]any)["record"] != false {
		t.Fatalf("get = %d %v", code, body)
	}
	if code, _ := f.call("POST", "/auth/admin/users/app-user-7/ban"); code != 404 {
		t.Fatalf("ban without a record = %d, want 404", code)
	}
	if code, body := f.call("DELETE", "/auth/admin/users/app-user-7/sessions"); code != 200 || body["ended"] != float64(1) || f.live(tok) {
		t.Fatalf("end sessions = %d %v", code, body)
	}
	if code, _ := f.call("GET", "/auth/admin/users/app-user-7/sessions"); code != 404 {
		t.Fatalf("list after all ended = %d, want 404", code)
	}
}

func TestSecretAndCrossSite(t *testing.T) {
	f := newFixture(t, backends(t)[0], testSecret)
	u := f.user("grace@example.com")
	tok, _ := f.signIn(u.ID)
	path := "/auth/admin/users/" + u.ID + "/sessions"
	for _, tc := range []struct {
		name    string
		method  string
		hdr     []string
		code    int
		errCode string
	}{
		{"no secret", "DELETE", []string{"Authorization", ""}, 401, "unauthorized"},
		{"wrong secret", "DELETE", []string{"Authorization", "Bearer " + strings.Repeat("x", len(testSecret))}, 401, "unauthorized"},
		{"secret as a prefix", "DELETE", []string{"Authorization", "Bearer " + testSecret[:32]}, 401, "unauthorized"},
		{"basic scheme", "DELETE", []string{"Authorization", "Basic " + testSecret}, 401, "unauthorized"},
		{"session cookie only", "DELETE", []string{"Authorization", "", "Cookie", "convex_session=" + tok}, 401, "unauthorized"},
		{"cross-site fetch", "DELETE", []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross_site"},
		{"other origin", "DELETE", []string{"Origin", "https://evil.example"}, 403, "cross_site"},
		{"preflight", "OPTIONS", []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "DELETE"}, 403, "cors_refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.call(tc.method, path, tc.hdr...)
			if code != tc.code || body["error"] != tc.errCode {
				t.Fatalf("= %d %v; want %d %s", code, body, tc.code, tc.errCode)
			}
			if !f.live(tok) {
				t.Fatal("a refused call ended the session")
			}
		})
	}
	// Refused calls are audited by what they asked.
	// (the preflight, an OPTIONS, is not a DELETE).
	if n := f.logs.FilterMessage("admin api call refused").FilterField(zap.String("op", control.OpEndSessions)).FilterField(zap.String("user_id", u.ID)).Len(); n != 7 {
		t.Fatalf("%d refused DELETEs audited with their operation and user; want 7", n)
	}
	// No CORS header is ever sent.
	req := httptest.NewRequest("OPTIONS", "https://app.example.com"+path, nil)
	req.Header.Set("Origin", "https://evil.example")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	for k := range rec.Header() {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Fatalf("CORS header %s sent", k)
		}
	}
	if code, body := f.call("DELETE", path, "Origin", "https://app.example.com"); code != 200 || body["ended"] != float64(1) {
		t.Fatalf("right secret = %d %v", code, body)
	}
}

func TestRoutesAndRealms(t *testing.T) {
	b := backends(t)[0]
	a, c := b.open(t, "realm-a"), b.open(t, "realm-b")
	realms := []control.Realm{realmOf("realm-a", "https://a.example", a), realmOf("realm-b", "https://b.example", c)}
	h, err := control.NewHandler(control.Config{Prefix: "/convex-auth", Realms: func() []control.Realm { return realms }, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ua, err := a.CreateUser(context.Background(), session.NewUser{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "http://localhost:2019"+path, nil))
		var body struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body.Error
	}
	for _, tc := range []struct {
		method, path string
		code         int
		err          string
	}{
		{"GET", "/convex-auth/users/" + ua.ID, 400, "realm_required"},
		{"GET", "/convex-auth/users/" + ua.ID + "?realm=realm-a", 200, ""},
		{"GET", "/convex-auth/users/" + ua.ID + "?realm=https://a.example", 200, ""},
		{"GET", "/convex-auth/users/" + ua.ID + "?issuer=https://a.example", 200, ""},
		{"GET", "/convex-auth/users/" + ua.ID + "?realm=" + session.RealmTag("realm-a"), 200, ""},
		{"GET", "/convex-auth/users/" + ua.ID + "?realm=realm-b", 404, "user_not_found"},
		{"GET", "/convex-auth/users/" + ua.ID + "?realm=nope", 404, "unknown_realm"},
		{"GET", "/convex-auth/users?realm=realm-a", 400, "email_required"},
		{"GET", "/convex-auth/users/" + ua.ID + "/ban?realm=realm-a", 405, "method_not_allowed"},
		{"POST", "/convex-auth/users/" + ua.ID + "?realm=realm-a", 405, "method_not_allowed"},
		{"GET", "/convex-auth/users/" + ua.ID + "/sessions/x?realm=realm-a", 405, "method_not_allowed"},
		{"GET", "/convex-auth/groups?realm=realm-a", 404, "not_found"},
		{"GET", "/convex-auth/users/" + ua.ID + "/tokens?realm=realm-a", 404, "not_found"},
		{"GET", "/convex-auth/users//sessions?realm=realm-a", 404, "not_found"},
	} {
		if code, e := get(tc.method, tc.path); code != tc.code || e != tc.err {
			t.Errorf("%s %s = %d %q; want %d %q", tc.method, tc.path, code, e, tc.code, tc.err)
		}
	}
	realms = realms[:1]
	if code, _ := get("GET", "/convex-auth/users/"+ua.ID); code != 200 {
		t.Errorf("with one realm, ?realm= is optional: got %d", code)
	}
	realms = nil
	if code, e := get("GET", "/convex-auth/users/"+ua.ID); code != 503 || e != "no_realm" {
		t.Errorf("no realm = %d %s", code, e)
	}
}

func TestShortSecretRefused(t *testing.T) {
	_, err := control.NewHandler(control.Config{Prefix: "/auth/admin", Realms: func() []control.Realm { return nil }, Logger: zap.NewNop(), Secret: strings.Repeat("s", 31)})
	if err == nil || !strings.Contains(err.Error(), "admin_api secret is 31 bytes") {
		t.Fatalf("err = %v", err)
	}
}

func TestRegistry(t *testing.T) {
	g := control.NewRegistry()
	s := session.NewMemoryStore(session.Options{})
	defer s.Close()
	r := realmOf("r1", "", s)
	// A reload: the new config's handlers are added before the old ones go.
	old1 := g.Add("store-1", r, "https://a.example")
	old2 := g.Add("store-1", r, "https://www.a.example")
	new1 := g.Add("store-1", r, "https://a.example")
	old1()
	old2()
	old2() // twice releases once
	got := g.Realms()
	if len(got) != 1 || got[0].Name != "r1" || strings.Join(got[0].Issuers, ",") != "https://a.example" {
		t.Fatalf("after reload: %+v", got)
	}
	other := g.Add("store-2", realmOf("r0", "", s), "https://b.example")
	if got := g.Realms(); len(got) != 2 || got[0].Name != "r0" {
		t.Fatalf("two realms: %+v", got)
	}
	other()
	new1()
	if got := g.Realms(); len(got) != 0 {
		t.Fatalf("after the last release: %+v", got)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// GET /events/dead answers with the realm's dead-letter listing, behind the
// same secret, and says so when the realm sends no events.
func TestDeadLettersRoute(t *testing.T) {
	mem := session.NewMemoryStore(session.Options{Realm: "r"})
	t.Cleanup(func() { _ = mem.Close() })
	withEvents := realmOf("with-events", "https://a.example.com", mem)
	withEvents.DeadLetters = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"dead":[{"id":"evt_1"}]}`))
	})
	without := realmOf("without-events", "https://b.example.com", mem)
	h, err := control.NewHandler(control.Config{Prefix: "/convex-auth", Secret: testSecret, Logger: zap.NewNop(),
		Realms: func() []control.Realm { return []control.Realm{withEvents, without} }})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, auth string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "https://a.example.com"+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/convex-auth/events/dead?realm=with-events", testSecret); code != http.StatusOK || body != `{"dead":[{"id":"evt_1"}]}` {
		t.Fatalf("dead letters: %d %s", code, body)
	}
	if code, body := get("/convex-auth/events/dead?realm=with-events", ""); code != http.StatusUnauthorized || strings.Contains(body, "evt_1") {
		t.Fatalf("dead letters without the secret: %d %s", code, body)
	}
	if code, body := get("/convex-auth/events/dead?realm=without-events", testSecret); code != http.StatusNotFound || !strings.Contains(body, `"no_events"`) {
		t.Fatalf("dead letters of a realm without events: %d %s", code, body)
	}
}
