package session

import (
	"context"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

func TestLookupInfoReportsCacheHits(t *testing.T) {
	lookup := func(t *testing.T, s Store, tok string) LookupInfo {
		t.Helper()
		var info LookupInfo
		if _, err := s.Lookup(WithLookupInfo(context.Background(), &info), tok); err != nil {
			t.Fatal(err)
		}
		return info
	}
	create := func(t *testing.T, s Store) string {
		t.Helper()
		tok, _, err := s.Create(context.Background(), NewSession{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	t.Run("redis", func(t *testing.T) {
		srv := redistest.StartServer(t)
		s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), DefaultCacheSize, Options{})
		tok := create(t, s)
		if info := lookup(t, s, tok); info.CacheHit {
			t.Error("first lookup reported a cache hit; it went to Redis")
		}
		if info := lookup(t, s, tok); !info.CacheHit {
			t.Error("second lookup reported no cache hit; the session was cached")
		}
		noCache := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), -1, Options{})
		tok = create(t, noCache)
		for range 2 {
			if info := lookup(t, noCache, tok); info.CacheHit {
				t.Error("a store without a cache reported a cache hit")
			}
		}
	})
	t.Run("memory", func(t *testing.T) {
		s := NewMemoryStore(Options{})
		defer s.Close()
		tok := create(t, s)
		for range 2 {
			if info := lookup(t, s, tok); info.CacheHit {
				t.Error("the in-process store has no cache but reported a hit")
			}
		}
	})
}
