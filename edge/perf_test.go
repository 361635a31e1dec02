package edge

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// TestTokenForMintsOncePerSession: requests that find a session's token
// stale at the same moment share one mint.
func TestTokenForMintsOncePerSession(t *testing.T) {
	g := newTestGateway(t, issuer.RS256, nil) // RS256: a mint is slow enough to overlap
	sess := &session.Session{ID: "sid_single_flight", UserID: "user_1", Profile: session.Profile{Email: "a@example.com"}}
	const callers = 32
	tokens := make([]string, callers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range callers {
		done.Go(func() {
			start.Wait()
			tok, err := g.tokenFor(context.Background(), sess, nil)
			if err != nil {
				t.Error(err)
				return
			}
			tokens[i] = tok.token
		})
	}
	start.Done()
	done.Wait()
	if n := g.tokens.mints.Load(); n != 1 {
		t.Errorf("%d concurrent requests for one session minted %d tokens, want 1", callers, n)
	}
	for i, tok := range tokens {
		if tok == "" || tok != tokens[0] {
			t.Fatalf("caller %d got a different token than caller 0", i)
		}
	}
}

// countingStore counts the lookups the gateway makes.
type countingStore struct {
	session.Store
	lookups atomic.Int64
}

func (c *countingStore) Lookup(ctx context.Context, token string) (*session.Session, error) {
	c.lookups.Add(1)
	return c.Store.Lookup(ctx, token)
}

// randomSessionToken is shaped like a real session token but names no
// session.
func randomSessionToken(t testing.TB) string {
	var tag [8]byte
	var secret [32]byte
	if _, err := rand.Read(tag[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		t.Fatal(err)
	}
	tok := base64.RawURLEncoding.EncodeToString(tag[:]) + "." + base64.RawURLEncoding.EncodeToString(secret[:])
	if !session.ValidTokenFormat(tok) {
		t.Fatalf("test token is not well-formed")
	}
	return tok
}

// TestRandomCookieFloodStaysBounded floods the request path (Redis store,
// local cache on) with distinct random well-formed cookies: each costs at
// most one store lookup and one Redis call, gets 401 with the cookie
// cleared, and the live heap does not grow with the number of cookies.
// The bench command (go run ./bench) does the same with 1,000,000 cookies
// against the built binary.
func TestRandomCookieFloodStaysBounded(t *testing.T) {
	srv := redistest.StartServer(t)
	st, err := session.NewRedisStore(session.RedisConfig{URL: srv.URL()}, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	counted := &countingStore{Store: st}
	g := newTestGateway(t, issuer.EdDSA, counted)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })

	const workers = 8
	flood := func(n int) {
		var wg sync.WaitGroup
		var next atomic.Int64
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					r := httptest.NewRequest(http.MethodGet, "http://app.example.com/loggedin", nil)
					r.Header.Set("Cookie", DefaultSecureCookieName+"="+randomSessionToken(t))
					w := httptest.NewRecorder()
					if err := g.ServeHTTP(w, r, nextNoop); err != nil {
						t.Error(err)
						return
					}
					if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
						t.Errorf("random cookie: status %d, Set-Cookie %q; want 401 clearing the cookie", w.Code, w.Header().Get("Set-Cookie"))
						return
					}
				}
			})
		}
		wg.Wait()
	}
	liveHeap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	flood(1000) // connections, pools and maps reach their working size
	lookupsBefore, callsBefore := counted.lookups.Load(), redisScriptCalls(t, rc)
	before := liveHeap()
	flood(floodTestCookies)
	after := liveHeap()
	lookups, calls := counted.lookups.Load()-lookupsBefore, redisScriptCalls(t, rc)-callsBefore

	if lookups > floodTestCookies {
		t.Errorf("%d random cookies made %d store lookups: want at most one each", floodTestCookies, lookups)
	}
	if calls > floodTestCookies {
		t.Errorf("%d random cookies made %d Redis script calls: want at most one each", floodTestCookies, calls)
	}
	// Anything kept per cookie (a session ID, a cache entry) is at least a
	// few dozen bytes: this bound catches it and not the heap's noise.
	growth := int64(after) - int64(before)
	if limit := int64(max(1<<20, 16*floodTestCookies)); growth > limit {
		t.Errorf("live heap grew by %d bytes over %d random cookies (%d bytes each); want under %d", growth, floodTestCookies, growth/floodTestCookies, limit)
	}
	t.Logf("%d random cookies: %d store lookups, %d Redis script calls, live heap %+d bytes", floodTestCookies, lookups, calls, growth)
}

// redisScriptCalls is how many EVALSHA and EVAL calls Redis has served.
func redisScriptCalls(t testing.TB, rc *redis.Client) int64 {
	t.Helper()
	info, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n, err := redistest.ScriptCalls(info)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkStaleHotSession: many requests for one session whose token is
// always stale (a preset's reuse window, set to 1 ms). Single-flight makes them share mints;
// mints/op is the fraction of requests that signed.
func BenchmarkStaleHotSession(b *testing.B) {
	for _, alg := range []issuer.Algorithm{issuer.EdDSA, issuer.RS256} {
		b.Run(string(alg), func(b *testing.B) {
			g := newTestGateway(b, alg, nil, func(c *Config) { c.InjectCookie, c.TokenReuse = InjectCookieBetterAuth, time.Millisecond })
			sess := &session.Session{ID: "sid_stale", UserID: "user_bench", Profile: session.Profile{Email: "bench@example.com", EmailVerified: true, Name: "Bench"}}
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := g.tokenFor(context.Background(), sess, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(g.tokens.mints.Load())/float64(b.N), "mints/op")
		})
	}
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// TestTokenCacheKeepsOnlyReusableTokens: tokens past the longest reuse
// window leave the cache at the next sweep, well before it is full, and a
// full cache never grows past its capacity.
func TestTokenCacheKeepsOnlyReusableTokens(t *testing.T) {
	c := newTokenCache(100_000, reusePolicy{maxAge: MaxTokenReuse}, time.Now)
	stale := time.Now().Add(-MaxTokenReuse - 2*time.Second)
	for i := range 5000 {
		c.put("stale"+strconv.Itoa(i), cachedToken{token: "t", issuedAt: stale})
	}
	if n := c.len(); n != 5000 {
		t.Fatalf("cache holds %d tokens, want the 5000 just put", n)
	}
	for i := range c.shards {
		c.shards[i].swept = time.Time{} // each shard's sweep is due
	}
	fresh := time.Now()
	for i := range 500 {
		c.put("fresh"+strconv.Itoa(i), cachedToken{token: "t", issuedAt: fresh})
	}
	if n := c.len(); n != 500 {
		t.Errorf("after a sweep the cache holds %d tokens, want only the 500 reusable ones", n)
	}

	small := newTokenCache(tokenCacheShards*10, reusePolicy{maxAge: MaxTokenReuse}, time.Now)
	for i := range 10_000 {
		small.put("s"+strconv.Itoa(i), cachedToken{token: "t", issuedAt: fresh})
	}
	if n := small.len(); n > tokenCacheShards*10 {
		t.Errorf("a cache of capacity %d holds %d tokens", tokenCacheShards*10, n)
	}
}
