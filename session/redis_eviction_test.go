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
