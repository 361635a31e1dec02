package session

import (
	"context"
	"testing"

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
