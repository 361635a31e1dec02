package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// appQuery stands in for the app's claims query: it answers with the
// claims of the caller's user in the context it was given, as the user's
// data says, and counts the calls.
type appQuery struct {
	mu    sync.Mutex
	roles map[string]string   // user ID -> role
	orgs  map[string][]string // user ID -> member of
	reply string              // when set, the raw reply instead
	gate  chan struct{}       // when set, each call waits for it
	calls atomic.Int64
	ctxs  []string // the contexts it was asked with
}

func (a *appQuery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	var body struct {
		Args struct {
			Context map[string]string `json:"context"`
		} `json:"args"`
	}
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	user := r.Header.Get("Authorization")[len("Bearer token-of-"):]
	a.mu.Lock()
	gate, reply := a.gate, a.reply
	ctxJSON, _ := json.Marshal(body.Args.Context)
	a.ctxs = append(a.ctxs, string(ctxJSON))
	role := a.roles[user]
	orgs := a.orgs[user]
	a.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if reply != "" {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, reply)
		return
	}
	value := map[string]any{"role": role}
	if org := body.Args.Context["org"]; org != "" {
		member := false
		for _, o := range orgs {
			member = member || o == org
		}
		if !member {
			_, _ = io.WriteString(w, `{"status":"success","value":null}`)
			return
		}
		value["org"] = org
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "value": value, "logLines": []string{}})
	_, _ = w.Write(b)
}

func (a *appQuery) set(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
}

type claimsFixture struct {
	app   *appQuery
	url   string
	clock *testclock.Clock
	logs  *observer.ObservedLogs
}

func newClaimsFixture(t *testing.T) *claimsFixture {
	app := &appQuery{roles: map[string]string{"u1": "member"}, orgs: map[string][]string{"u1": {"o1", "o2"}}}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return &claimsFixture{app: app, url: srv.URL, clock: testclock.New(time.Now().Truncate(time.Millisecond))}
}

// instance is one gateway's cache on store.
func (f *claimsFixture) instance(t *testing.T, store interface {
	session.Store
	session.ClaimsStore
}) *ClaimsCache {
	core, logs := observer.New(zap.InfoLevel)
	f.logs = logs
	c, err := NewClaimsCache(ClaimsConfig{
		Query:       QueryConfig{ConvexURL: f.url, Query: "auth:claims", Timeout: time.Second},
		TTL:         time.Minute,
		MaxStale:    time.Hour,
		ContextKeys: []string{"org"},
	}, store, store, func(_ context.Context, s *session.Session) (string, error) {
		return "token-of-" + s.UserID, nil
	}, f.clock.Now, zap.New(core), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (f *claimsFixture) memoryStore(t *testing.T) *session.MemoryStore {
	s := session.NewMemoryStore(session.Options{Now: f.clock.Now})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// redisStores are n instances on one Redis.
func (f *claimsFixture) redisStores(t *testing.T, n int) []*session.RedisStore {
	srv := redistest.StartServer(t)
	var out []*session.RedisStore
	for range n {
		client := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = client.Close() })
		s, err := session.NewRedisStoreFromClient(client, session.RedisConfig{KeyPrefix: "claims-test:"}, session.Options{Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		waitUntil(t, eventually, "the revocation subscription", s.ClaimsChangesLive)
		out = append(out, s)
	}
	return out
}

// eventually bounds a wait for what must happen, generously: a starved
// machine takes its time, and a passing run waits no longer. Timing
// promises are benchmarks'.
const eventually = 30 * time.Second

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func newUserSession(t *testing.T, s session.Store, userID string) *session.Session {
	_, sess, err := s.Create(context.Background(), session.NewSession{UserID: userID, Provider: "github"})
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func role(t *testing.T, c *ClaimsCache, sess *session.Session) string {
	t.Helper()
	claims, err := c.For(context.Background(), sess)
	if err != nil {
		t.Fatalf("For: %v", err)
	}
	v, _ := claims.Text("role")
	return v
}

// TestOneCallPerSessionPerTTL: a thousand concurrent requests of one
// session over two instances make one call; the next comes after the TTL.
func TestOneCallPerSessionPerTTL(t *testing.T) {
	f := newClaimsFixture(t)
	stores := f.redisStores(t, 2)
	a, b := f.instance(t, stores[0]), f.instance(t, stores[1])
	sess := newUserSession(t, stores[0], "u1")
	f.app.set(func() { f.app.gate = make(chan struct{}) })
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := range 1000 {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if claims, err := c.For(context.Background(), sess); err != nil || claims == nil {
				failures.Add(1)
			}
		}()
	}
	waitUntil(t, eventually, "the first call", func() bool { return f.app.calls.Load() > 0 })
	time.Sleep(100 * time.Millisecond) // every request is waiting now
	close(f.app.gate)
	wg.Wait()
	f.app.set(func() { f.app.gate = nil })
	if n := f.app.calls.Load(); n != 1 || failures.Load() != 0 {
		t.Fatalf("1000 requests over two instances made %d calls, %d failed; want 1 call", n, failures.Load())
	}
	if role(t, a, sess) != "member" || role(t, b, sess) != "member" || f.app.calls.Load() != 1 {
		t.Fatal("a cached result was asked for again")
	}
	f.clock.Advance(time.Minute + time.Second)
	if role(t, b, sess) != "member" || role(t, a, sess) != "member" {
		t.Fatal("after the TTL")
	}
	if n := f.app.calls.Load(); n != 2 {
		t.Fatalf("after the TTL the two instances made %d calls in all; want 2", n)
	}
}

// TestRefreshReachesAnotherInstance: a role change reaches the other
// instance's next result as soon as the refresh is told there.
func TestRefreshReachesAnotherInstance(t *testing.T) {
	f := newClaimsFixture(t)
	stores := f.redisStores(t, 2)
	a, b := f.instance(t, stores[0]), f.instance(t, stores[1])
	sess := newUserSession(t, stores[0], "u1")
	if role(t, b, sess) != "member" {
		t.Fatal("first result")
	}
	f.app.set(func() { f.app.roles["u1"] = "admin" })
	if role(t, b, sess) != "member" {
		t.Fatal("the cached result changed before any refresh")
	}
	if err := a.RefreshUser(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, eventually, "the admin role on the other instance", func() bool { return role(t, b, sess) == "admin" })
	t.Logf("the refresh reached the other instance's next result after %s", took)
}

// TestFailingQueryUsesTheLastResultUpToMaxStale: while the query fails,
// the last result serves until TTL + max_stale, then there are none.
func TestFailingQueryUsesTheLastResultUpToMaxStale(t *testing.T) {
	for _, failure := range []string{
		`{"status":"error","errorMessage":"Uncaught Error: the database is down"}`,
		`{"status":"success","value":{"role":"admin","sub":"someone-else"}}`,
	} {
		f := newClaimsFixture(t)
		store := f.memoryStore(t)
		c := f.instance(t, store)
		sess := newUserSession(t, store, "u1")
		if role(t, c, sess) != "member" {
			t.Fatal("first result")
		}
		f.app.set(func() { f.app.reply = failure })
		f.clock.Advance(2 * time.Minute)
		if role(t, c, sess) != "member" {
			t.Fatal("the last result is not used while the query fails")
		}
		calls := f.app.calls.Load()
		for range 10 {
			role(t, c, sess)
		}
		if f.app.calls.Load() != calls {
			t.Fatal("every request asks a failing query again")
		}
		f.clock.Advance(time.Hour)
		if _, err := c.For(context.Background(), sess); !errors.Is(err, ErrClaimsUnavailable) {
			t.Fatalf("past max_stale: %v; want ErrClaimsUnavailable", err)
		}
		f.app.set(func() { f.app.reply = "" })
		f.clock.Advance(leaseMargin + DefaultQueryTimeout)
		if role(t, c, sess) != "member" {
			t.Fatal("not back once the query answers")
		}
	}
}

func TestReservedClaimIsRefusedAndLogged(t *testing.T) {
	f := newClaimsFixture(t)
	store := f.memoryStore(t)
	c := f.instance(t, store)
	f.app.set(func() { f.app.reply = `{"status":"success","value":{"role":"admin","email":"boss@example.com"}}` })
	if _, err := c.For(context.Background(), newUserSession(t, store, "u1")); !errors.Is(err, ErrClaimsUnavailable) {
		t.Fatalf("a reply with a reserved claim: %v; want no claims", err)
	}
	if logs := f.logs.FilterMessageSnippet("refused whole").All(); len(logs) != 1 {
		t.Fatalf("logged %d refusals; want 1", len(logs))
	}
}

func TestNullIsNoClaims(t *testing.T) {
	f := newClaimsFixture(t)
	store := f.memoryStore(t)
	c := f.instance(t, store)
	f.app.set(func() { f.app.reply = `{"status":"success","value":null}` })
	claims, err := c.For(context.Background(), newUserSession(t, store, "u1"))
	if err != nil || claims != NoClaims {
		t.Fatalf("null: %v, %v; want no claims", claims, err)
	}
}

func TestSwitchContext(t *testing.T) {
	f := newClaimsFixture(t)
	stores := f.redisStores(t, 2)
	a, b := f.instance(t, stores[0]), f.instance(t, stores[1])
	sess := newUserSession(t, stores[0], "u1")
	orgOf := func(c *ClaimsCache) string {
		claims, err := c.For(context.Background(), sess)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := claims.Text("org")
		return v
	}
	if orgOf(b) != "" {
		t.Fatal("an org before any switch")
	}
	claims, err := a.SwitchContext(context.Background(), sess, []byte(`{"org":"o2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := claims.Text("org"); v != "o2" {
		t.Fatalf("the switch's claims: %s", claims.JSON())
	}
	waitUntil(t, eventually, "the switch on the other instance", func() bool { return orgOf(b) == "o2" })
	// The next call, after the TTL, is asked in the stored context.
	f.clock.Advance(2 * time.Minute)
	if orgOf(a) != "o2" {
		t.Fatal("the context was not kept")
	}
	f.app.mu.Lock()
	last := f.app.ctxs[len(f.app.ctxs)-1]
	f.app.mu.Unlock()
	if last != `{"org":"o2"}` {
		t.Fatalf("asked with context %s", last)
	}
	// A context the query refuses changes nothing.
	if _, err := a.SwitchContext(context.Background(), sess, []byte(`{"org":"o9"}`)); !errors.Is(err, ErrContextRefused) {
		t.Fatalf("a refused org: %v", err)
	}
	if orgOf(a) != "o2" || orgOf(b) != "o2" {
		t.Fatal("a refused switch changed the session")
	}
	for _, body := range []string{`{"team":"t1"}`, `{"org":""}`, `{"org":1}`, `["o1"]`, `{"org":"o1"} x`} {
		if _, err := a.SwitchContext(context.Background(), sess, []byte(body)); !errors.Is(err, ErrBadContext) {
			t.Errorf("body %s: %v; want ErrBadContext", body, err)
		}
	}
}

// TestRefreshDuringACallIsNotLost: a result asked before a refresh and
// answered after it is not kept; the next request asks again.
func TestRefreshDuringACallIsNotLost(t *testing.T) {
	f := newClaimsFixture(t)
	store := f.memoryStore(t)
	c := f.instance(t, store)
	sess := newUserSession(t, store, "u1")
	gate := make(chan struct{})
	f.app.set(func() { f.app.gate = gate })
	done := make(chan string)
	go func() {
		claims, _ := c.For(context.Background(), sess)
		v, _ := claims.Text("role")
		done <- v
	}()
	waitUntil(t, eventually, "the call", func() bool { return f.app.calls.Load() == 1 })
	f.app.set(func() { f.app.roles["u1"] = "admin"; f.app.gate = nil })
	if err := c.RefreshUser(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if got := <-done; got != "member" {
		t.Fatalf("the call in flight answered %q", got)
	}
	if got := role(t, c, sess); got != "admin" {
		t.Fatalf("after the refresh: %q; want admin (asked again)", got)
	}
}

func ExampleClaims_Text() {
	c, _ := ParseClaims([]byte(`{"role":"admin","orgs":["o1","o2"],"plan":{"tier":"pro"}}`))
	for _, name := range c.Names() {
		v, _ := c.Text(name)
		fmt.Printf("%s=%s\n", name, v)
	}
	// Output:
	// orgs=o1,o2
	// plan={"tier":"pro"}
	// role=admin
}

// leaseAfterOther is a store on which another instance asks, stores and
// releases its lease between this instance's read and its lease (once).
type leaseAfterOther struct {
	*session.MemoryStore
	other func()
	once  sync.Once
}

func (s *leaseAfterOther) LeaseClaims(ctx context.Context, userID, sessionID string, ttl time.Duration) (string, error) {
	s.once.Do(s.other)
	return s.MemoryStore.LeaseClaims(ctx, userID, sessionID, ttl)
}

// TestNoSecondCallAfterAnotherInstanceStored: an instance that gets the
// lease just after another instance stored a fresh result (and released
// its lease) uses that result instead of asking again.
func TestNoSecondCallAfterAnotherInstanceStored(t *testing.T) {
	f := newClaimsFixture(t)
	mem := f.memoryStore(t)
	store := &leaseAfterOther{MemoryStore: mem}
	sess := newUserSession(t, mem, "u1")
	other := f.instance(t, mem)
	store.other = func() {
		if role(t, other, sess) != "member" {
			t.Error("the other instance got no claims")
		}
	}
	this := f.instance(t, store)
	if role(t, this, sess) != "member" {
		t.Fatal("no claims")
	}
	if n := f.app.calls.Load(); n != 1 {
		t.Fatalf("%d calls; want 1: the second instance asked again after the first stored its result", n)
	}
}
