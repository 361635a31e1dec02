package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// testArgon2 keeps the tests fast; production hashes use the defaults.
var testArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// fakeClock moves only when told.
type fakeClock = testclock.Clock

// testHost is the Host a real server would be: a session cookie over the
// in-process store.
type testHost struct {
	store testStore
	// results, if set, hears every StartSession.
	results func(Result)
}

// testStore is either session store.
type testStore interface {
	session.Store
	session.UserStore
	session.Limiter
	session.Banner
}

const testSessionCookie = "sess"

func (h *testHost) SignedIn(r *http.Request) (bool, error) {
	c, err := r.Cookie(testSessionCookie)
	if err != nil {
		return false, nil
	}
	_, err = h.store.Lookup(r.Context(), c.Value)
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (h *testHost) Session(r *http.Request) (*session.Session, error) {
	c, err := r.Cookie(testSessionCookie)
	if err != nil {
		return nil, nil
	}
	sess, err := h.store.Lookup(r.Context(), c.Value)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	return sess, err
}

func (h *testHost) SameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	return o == "" || o == "http://"+r.Host
}

func (h *testHost) StartSession(w http.ResponseWriter, r *http.Request, res Result) error {
	if h.results != nil {
		h.results(res)
	}
	if c, err := r.Cookie(testSessionCookie); err == nil {
		if err := h.store.Delete(r.Context(), c.Value); err != nil {
			return err
		}
	}
	tok, _, err := h.store.Create(r.Context(), session.NewSession{UserID: res.User.ID, Provider: res.Provider, Profile: res.User.Profile, UserAgent: r.Header.Get("User-Agent")})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: testSessionCookie, Value: tok, Path: "/", HttpOnly: true})
	return nil
}

// env is a site with the sign-in service in front of a page that shows
// who is signed in.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	origin string
	svc    *Service
	store  testStore
	clock  *fakeClock
	host   *testHost
	// results are the service's OnResult calls.
	results *resultLog
}

// resultLog records OnResult calls as "provider:true" or "provider:false".
type resultLog struct {
	mu  sync.Mutex
	got []string
}

func (l *resultLog) add(provider string, signedIn bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fmt.Sprintf("%s:%t", provider, signedIn))
}

// take returns the calls since the last take, joined by spaces.
func (l *resultLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := strings.Join(l.got, " ")
	l.got = nil
	return got
}

type whoami struct {
	UserID        string `json:"user_id"`
	SessionID     string `json:"session_id"`
	Provider      string `json:"provider"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
}

func newEnv(t *testing.T, configure func(c *Config, origin string)) *env {
	t.Helper()
	return newEnvOn(t, nil, configure)
}

// storeMaker builds a store on the test's clock; nil is the in-process one.
type storeMaker func(t *testing.T, opts session.Options) testStore

func newEnvOn(t *testing.T, mk storeMaker, configure func(c *Config, origin string)) *env {
	t.Helper()
	e := &env{t: t, clock: testclock.New(time.Now().Truncate(time.Millisecond)), results: new(resultLog)}
	if mk == nil {
		e.store = session.NewMemoryStore(session.Options{Now: e.clock.Now})
	} else {
		e.store = mk(t, session.Options{Now: e.clock.Now})
	}
	t.Cleanup(func() { _ = e.store.Close() })
	host := &testHost{store: e.store}
	e.host = host
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.svc.Handle(w, r) {
			return
		}
		c, err := r.Cookie(testSessionCookie)
		if err != nil {
			http.Error(w, "signed out", http.StatusUnauthorized)
			return
		}
		sess, err := e.store.Lookup(r.Context(), c.Value)
		if err != nil {
			http.Error(w, "signed out", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(whoami{UserID: sess.UserID, SessionID: sess.ID, Provider: sess.Provider,
			Email: sess.Profile.Email, EmailVerified: sess.Profile.EmailVerified, Name: sess.Profile.Name})
	}))
	e.origin = "http://" + e.srv.Listener.Addr().String()
	cfg := Config{Origin: e.origin, Users: e.store, Sessions: e.store, Host: host, OnResult: e.results.add, Now: e.clock.Now}
	cfg.Redirects, _ = NewRedirectPolicy("/", nil)
	configure(&cfg, e.origin)
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// browser keeps cookies and never follows redirects by itself.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: time.Minute, // a bound only: argon2 under -race on a starved CPU is slow
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as the site's own page would (Origin of the target).
func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
	return b.do(req)
}

// location resolves the response's Location against the request URL.
func location(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("status %d without a Location: %v", resp.StatusCode, err)
	}
	return loc.String()
}

func (b *browser) whoami(origin string) (whoami, bool) {
	b.t.Helper()
	resp, body := b.get(origin + "/whoami")
	if resp.StatusCode != http.StatusOK {
		return whoami{}, false
	}
	var w whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		b.t.Fatal(err)
	}
	return w, true
}

// testOP is a real OpenID Provider, zitadel/oidc's op package with its
// example in-memory storage and login UI, on loopback.
type testOP struct {
	srv      *httptest.Server
	issuer   string
	clientID string
	secret   string
	storage  *storage.Storage
}

// The example storage's user; it has a verified email.
const (
	opUsername = "test-user2"
	opPassword = "verysecure"
	opEmail    = "test-user2@zitadel.ch"
)

var opClients atomic.Int64

// startOP runs the provider and registers a confidential web client with
// the given redirect URIs.
func startOP(t *testing.T, redirectURIs ...string) *testOP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	op := &testOP{srv: srv, issuer: issuer, clientID: fmt.Sprintf("web-%d", opClients.Add(1)), secret: "client-secret"}
	// The example keeps clients in a package map: register before serving.
	storage.RegisterClients(storage.WebClient(op.clientID, op.secret, redirectURIs...))
	op.storage = storage.NewStorage(storage.NewUserStore(issuer))
	srv.Config.Handler = exampleop.SetupServer(issuer, op.storage, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return op
}

// signIn drives the provider's login UI like a user: open the
// authorization URL, post the username and password, and return the URL the
// provider sends the browser back to (the site's callback with code and
// state), without opening it.
func (op *testOP) signIn(b *browser, authURL string) string {
	b.t.Helper()
	resp, _ := b.get(authURL)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	login, err := url.Parse(location(b.t, resp))
	if err != nil {
		b.t.Fatal(err)
	}
	id := login.Query().Get("authRequestID")
	if id == "" {
		b.t.Fatalf("authorize sent the browser to %s, not to the login UI", login)
	}
	resp, body := b.post(op.issuer+"/login/username", url.Values{"id": {id}, "username": {opUsername}, "password": {opPassword}})
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("login: status %d: %s", resp.StatusCode, body)
	}
	resp, body = b.get(location(b.t, resp))
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("authorize callback: status %d: %s", resp.StatusCode, body)
	}
	return location(b.t, resp)
}

// userinfo asks the provider who the access token belongs to.
func (op *testOP) userinfo(ctx context.Context, authorization string) (map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, op.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: %s", resp.Status)
	}
	var claims map[string]any
	return claims, json.NewDecoder(resp.Body).Decode(&claims)
}
