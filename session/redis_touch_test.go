package session

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// requestKey marks a context as a request's, so a hook can tell the
// commands made on the request path from the background writer's.
type requestKey struct{}

// requestCommands counts the Redis commands sent with a request's context.
type requestCommands struct{ n atomic.Int64 }

func (h *requestCommands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *requestCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Value(requestKey{}) != nil {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *requestCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if ctx.Value(requestKey{}) != nil {
			h.n.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}

// storedLastUse reads the session's last use from its Redis record.
func storedLastUse(t *testing.T, c redis.UniversalClient, s *RedisStore, tok string) time.Time {
	t.Helper()
	p, err := parseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Get(context.Background(), s.sessionKey(p.userTag, p.sessionID)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := decodeRecord(p.sessionID, raw, s.realmTag)
	if err != nil {
		t.Fatal(err)
	}
	return sess.LastUsedAt
}

// TestRedisTouchIsOffTheRequestPath: a cached session whose last use is due
// to be written is served without a Redis command on the request path; the
// write reaches Redis shortly after, once per interval however many lookups.
func TestRedisTouchIsOffTheRequestPath(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	opts := Options{IdleTTL: time.Hour, TouchInterval: time.Minute, Now: clock.Now}
	client := newTestClient(t, srv.Addr, false)
	hook := &requestCommands{}
	client.AddHook(hook)
	s, err := NewRedisStoreFromClient(client, RedisConfig{KeyPrefix: uniquePrefix(), CacheTTL: 10 * time.Minute}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	waitFor(t, eventually, "revocation subscription", s.live.Load)
	inspect := newTestClient(t, srv.Addr, false)
	reqCtx := context.WithValue(context.Background(), requestKey{}, true)

	tok, created, err := s.Create(context.Background(), NewSession{UserID: "u", Profile: testProfile()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(reqCtx, tok); err != nil { // the miss that caches it
		t.Fatal(err)
	}
	hook.n.Store(0)

	for round := 1; round <= 3; round++ {
		clock.Advance(opts.TouchInterval + time.Second)
		due := clock.Now()
		for range 20 {
			got, err := s.Lookup(reqCtx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastUsedAt.Equal(due) {
				t.Fatalf("round %d: lookup's last use %v; want %v", round, got.LastUsedAt, due)
			}
		}
		if n := hook.n.Load(); n != 0 {
			t.Fatalf("round %d: %d Redis commands on the request path; want 0", round, n)
		}
		waitFor(t, eventually, "last use written to Redis", func() bool {
			return storedLastUse(t, inspect, s, tok).Equal(due)
		})
	}
	if created.LastUsedAt.Equal(storedLastUse(t, inspect, s, tok)) {
		t.Fatal("last use never written")
	}
}

// TestRedisCachedSessionStillIdlesOut: a session served from the cache
// without being used for idle_ttl is not served again, however young its
// cache entry.
func TestRedisCachedSessionStillIdlesOut(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	opts := Options{IdleTTL: 10 * time.Minute, TouchInterval: time.Minute, Now: clock.Now}
	client := newTestClient(t, srv.Addr, false)
	s, err := NewRedisStoreFromClient(client, RedisConfig{KeyPrefix: uniquePrefix(), CacheTTL: time.Hour}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	waitFor(t, eventually, "revocation subscription", s.live.Load)
	ctx := context.Background()
	tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	// Used every 5 minutes for an hour: kept alive by background writes.
	for range 12 {
		clock.Advance(5 * time.Minute)
		if _, err := s.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
		settleTouches(t, s)
	}
	clock.Advance(opts.IdleTTL - time.Millisecond)
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatalf("just under idle_ttl since the last use: %v", err)
	}
	settleTouches(t, s)
	clock.Advance(opts.IdleTTL)
	if _, err := s.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("idle for idle_ttl: Lookup = %v; want ErrNotFound", err)
	}
}

// TestRedisTouchQueueIsBounded: when the queue is full a touch is dropped
// rather than waited for, and the session's next lookup queues it again.
func TestRedisTouchQueueIsBounded(t *testing.T) {
	q := newTouchQueue()
	now := time.Now()
	for i := range maxPendingTouches {
		p := parsedToken{sessionID: string(rune('a'+i%26)) + time.Duration(i).String()}
		if !q.add(p, now) {
			t.Fatalf("touch %d refused before the queue was full", i)
		}
	}
	if q.add(parsedToken{sessionID: "one more"}, now) {
		t.Fatal("a full queue accepted a new session")
	}
	if !q.add(parsedToken{sessionID: "a0s"}, now.Add(time.Second)) {
		t.Fatal("a full queue refused a session it already holds")
	}
	if got := len(q.take()); got != maxPendingTouches {
		t.Fatalf("took %d; want %d", got, maxPendingTouches)
	}
	if !q.add(parsedToken{sessionID: "one more"}, now) {
		t.Fatal("an emptied queue refused a touch")
	}
}

// TestRedisCloseStopsTheBackgroundWriter: Close leaves no goroutine behind,
// also with touches queued against a Redis that stopped answering.
func TestRedisCloseStopsTheBackgroundWriter(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	// A client of its own, closed by the store, so its goroutines count too.
	before := runtime.NumGoroutine()
	s, err := NewRedisStore(RedisConfig{URL: srv.URL(), KeyPrefix: uniquePrefix()}, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "revocation subscription", s.live.Load)
	ctx := context.Background()
	tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * DefaultTouchInterval)
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "goroutines back to where they were", func() bool {
		return runtime.NumGoroutine() <= before
	})
	// Queued touches after Close go nowhere and do not block.
	done := make(chan struct{})
	go func() {
		_, _ = s.Lookup(ctx, tok)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a lookup after Close blocked")
	}
}
