package session

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// BenchmarkLookup: cache_hit is the Redis store answering from its local
// cache, redis_miss a lookup that goes to Redis (one script round trip),
// memory the in-process store.
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	clock := newFakeClock() // frozen: no touch, the cache entry stays fresh
	opts := Options{Now: clock.Now}
	run := func(b *testing.B, s Store) {
		tok, _, err := s.Create(ctx, NewSession{UserID: "k57cxd9g0g3y8b6v2n4m1q7w5r0t3s2p", Provider: "github", Profile: testProfile()})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := s.Lookup(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cache_hit", func(b *testing.B) {
		srv := redistest.StartServer(b)
		run(b, newTestRedisStore(b, srv.Addr, false, uniquePrefix(), 0, opts))
	})
	b.Run("redis_miss", func(b *testing.B) {
		srv := redistest.StartServer(b)
		run(b, newTestRedisStore(b, srv.Addr, false, uniquePrefix(), -1, opts))
	})
	b.Run("memory", func(b *testing.B) {
		m := NewMemoryStore(opts)
		b.Cleanup(func() { _ = m.Close() })
		run(b, m)
	})
}

// BenchmarkLookupParallel is the same under concurrent requests.
func BenchmarkLookupParallel(b *testing.B) {
	ctx := context.Background()
	clock := newFakeClock()
	opts := Options{Now: clock.Now}
	run := func(b *testing.B, s Store) {
		tok, _, err := s.Create(ctx, NewSession{UserID: "u", Profile: testProfile()})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Lookup(ctx, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("cache_hit", func(b *testing.B) {
		srv := redistest.StartServer(b)
		run(b, newTestRedisStore(b, srv.Addr, false, uniquePrefix(), 0, opts))
	})
	b.Run("redis_miss", func(b *testing.B) {
		srv := redistest.StartServer(b)
		run(b, newTestRedisStore(b, srv.Addr, false, uniquePrefix(), -1, opts))
	})
}

// BenchmarkCacheBytesPerEntry fills a Redis store's local cache through
// lookups of realistic sessions and reports the live heap each cached
// session costs (runtime.MemStats after a GC): the figure that sizes
// DefaultCacheSize. Run it once: go test -run '^$' -bench CacheBytesPerEntry -benchtime 1x ./session
func BenchmarkCacheBytesPerEntry(b *testing.B) {
	const n = 20000
	srv := redistest.StartServer(b)
	ctx := context.Background()
	s, err := NewRedisStoreFromClient(newTestClient(b, srv.Addr, false), RedisConfig{KeyPrefix: uniquePrefix(), CacheSize: n}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	waitFor(b, eventually, "revocation subscription", s.live.Load)
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i], _, err = s.Create(ctx, NewSession{UserID: realisticUserID(i), Provider: "google", Profile: realisticProfile(i)})
		if err != nil {
			b.Fatal(err)
		}
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	b.ResetTimer()
	for b.Loop() {
		s.cache.flush()
		before := heap()
		for _, tok := range tokens {
			if _, err := s.Lookup(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		after := heap()
		if got := s.cache.len(); got != n {
			b.Fatalf("cache holds %d; want %d", got, n)
		}
		b.ReportMetric(float64(after-before)/n, "B/entry")
	}
	runtime.KeepAlive(tokens)
}

// realisticUserID looks like a Convex document ID (32 characters).
func realisticUserID(i int) string {
	return fmt.Sprintf("k57cxd9g0g3y8b6v2n4m1q7w%08d", i)
}

// realisticProfile is a Google sign-in's: every string distinct, as
// decoded from Redis; the picture is a long googleusercontent URL.
func realisticProfile(i int) Profile {
	return Profile{
		Email:         fmt.Sprintf("ada.lovelace%06d@example.com", i),
		EmailVerified: true,
		Name:          fmt.Sprintf("Ada Lovelace %06d", i),
		Picture:       fmt.Sprintf("https://lh3.googleusercontent.com/a/ACg8ocJ%06dQ2xVb7kLmN0pRsTuVwXyZaBcDeFgHiJkLmNoPqRsTuVw=s96-c", i),
	}
}

// BenchmarkRevocationReachesOtherInstance measures the promise that a
// revocation reaches every instance within a second: A ends a session that
// B has cached, and the time from A's call to B's OnRevoke hook (Redis
// pub/sub) is reported as p50, p99 and max. The tests only check that it
// arrives.
func BenchmarkRevocationReachesOtherInstance(b *testing.B) {
	srv := redistest.StartServer(b)
	prefix := uniquePrefix()
	a := newTestRedisStore(b, srv.Addr, false, prefix, 0, Options{})
	other := newTestRedisStore(b, srv.Addr, false, prefix, 0, Options{})
	revoked := make(chan string, 64)
	b.Cleanup(other.OnRevoke(func(id string) { revoked <- id }))
	ctx := context.Background()
	var reach []time.Duration
	for b.Loop() {
		tok, sess, err := a.Create(ctx, NewSession{UserID: "u"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := other.Lookup(ctx, tok); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := a.Delete(ctx, tok); err != nil {
			b.Fatal(err)
		}
		timeout := time.After(eventually)
	wait:
		for {
			select {
			case id := <-revoked:
				if id == sess.ID {
					break wait
				}
			case <-timeout:
				b.Fatalf("the revocation did not reach the other instance within %v", eventually)
			}
		}
		reach = append(reach, time.Since(start))
	}
	reportPercentiles(b, reach)
}

// BenchmarkLookupUnresponsiveStore measures the request's store deadline: a
// lookup with no deadline of its own, against a Redis that holds every
// client (CLIENT PAUSE) and a client read timeout of minutes, gives up
// after DefaultLookupTimeout (2 s).
func BenchmarkLookupUnresponsiveStore(b *testing.B) {
	srv := redistest.StartServer(b)
	admin := newTestClient(b, srv.Addr, false)
	tok, _, _ := newToken("u")
	s, err := NewRedisStore(RedisConfig{URL: srv.URL(), KeyPrefix: uniquePrefix(), CacheSize: -1, ReadTimeout: 2 * time.Minute}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	var took []time.Duration
	for b.Loop() {
		d, err := lookupWhilePaused(b, admin, s, tok, 2*time.Minute)
		if !IsUnavailable(err) {
			b.Fatalf("Lookup = %v; want unavailable", err)
		}
		took = append(took, d)
	}
	reportPercentiles(b, took)
}

// reportPercentiles reports p50, p99 and max of ds in milliseconds.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(ds[len(ds)/2]), "p50-ms")
	b.ReportMetric(ms(ds[len(ds)*99/100]), "p99-ms")
	b.ReportMetric(ms(ds[len(ds)-1]), "max-ms")
}

// BenchmarkRedisStopAndRestart measures the outage figures the tests only
// wait for. Noticed: after redis-server dies, how long until a lookup of a
// session this store has cached fails (the cache is trusted until the
// revocation subscription is known to be down; then the lookup asks Redis,
// and go-redis retries a dead connection before it gives up). Recovered:
// after it restarts (AOF keeps the session), how long until the lookup
// works again.
func BenchmarkRedisStopAndRestart(b *testing.B) {
	srv := redistest.StartServer(b, "--appendonly", "yes", "--appendfsync", "always")
	s := newTestRedisStore(b, srv.Addr, false, uniquePrefix(), 0, Options{})
	ctx := context.Background()
	tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		b.Fatal(err)
	}
	lookup := func() error {
		lctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
		defer cancel()
		_, err := s.Lookup(lctx, tok)
		return err
	}
	var noticed, recovered []time.Duration
	for b.Loop() {
		waitFor(b, eventually, "the cached session served with Redis up", func() bool { return lookup() == nil && s.live.Load() })
		srv.Stop()
		start := time.Now()
		waitFor(b, eventually, "lookups fail once Redis is gone", func() bool { return lookup() != nil })
		noticed = append(noticed, time.Since(start))
		srv.Restart()
		start = time.Now()
		waitFor(b, eventually, "lookups work once Redis is back", func() bool { return lookup() == nil })
		recovered = append(recovered, time.Since(start))
	}
	slices.Sort(noticed)
	slices.Sort(recovered)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(noticed[len(noticed)-1]), "noticed-max-ms")
	b.ReportMetric(ms(recovered[len(recovered)-1]), "recovered-max-ms")
}
