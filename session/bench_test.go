package session

import (
	"context"
	"fmt"
	"runtime"
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
	waitFor(b, 5*time.Second, "revocation subscription", s.live.Load)
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
