package session

import (
	"context"
	"errors"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

func TestRedisCheckEvictionPolicy(t *testing.T) {
	srv := redistest.StartServer(t)
	admin := newTestClient(t, srv.Addr, false)
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), -1, Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		policy string
		safe   bool
	}{
		{"noeviction", true}, {"volatile-lru", true}, {"volatile-lfu", true}, {"volatile-random", true}, {"volatile-ttl", true},
		{"allkeys-lru", false}, {"allkeys-lfu", false}, {"allkeys-random", false},
	} {
		if err := admin.ConfigSet(ctx, "maxmemory-policy", tc.policy).Err(); err != nil {
			t.Fatal(err)
		}
		err := s.CheckEvictionPolicy(ctx)
		var pe *EvictionPolicyError
		if tc.safe && err != nil {
			t.Errorf("%s: %v; want no error", tc.policy, err)
		}
		if !tc.safe && (!errors.As(err, &pe) || pe.Policy != tc.policy || pe.Addr != srv.Addr) {
			t.Errorf("%s: %v; want an EvictionPolicyError naming the policy and %s", tc.policy, err, srv.Addr)
		}
	}
}

// TestRedisEvictedIndexSignsOut: a session whose user index is gone (as if
// evicted) is not found, so revoking all of a user's sessions can never
// miss one that still works.
func TestRedisEvictedIndexSignsOut(t *testing.T) {
	srv := redistest.StartServer(t)
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), -1, Options{})
	inspect := newTestClient(t, srv.Addr, false)
	ctx := context.Background()
	tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := inspect.Del(ctx, s.indexKey(userTag("u"))).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session without its index: Lookup = %v; want ErrNotFound", err)
	}
	if n, _ := inspect.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("%d keys left; want the orphan session deleted", n)
	}
}
