package session

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// EvictionPolicyError says that a Redis may evict keys the gateway needs.
// Under allkeys-* policies keys without a TTL can go: an evicted user or
// account record gives a person a new user ID on their next sign-in, an
// evicted email index links no account, and an evicted rate counter lifts
// a limit. Sessions, their indexes, single-use values and rate counters
// have TTLs and can be evicted under volatile-* too: an evicted session
// means signed out (see docs/scale.md).
type EvictionPolicyError struct {
	// Addr is the node, Policy its maxmemory-policy.
	Addr, Policy string
}

func (e *EvictionPolicyError) Error() string {
	return fmt.Sprintf("redis %s has maxmemory-policy %s, which can evict user and account records (they have no TTL): set maxmemory-policy to noeviction or a volatile-* policy", e.Addr, e.Policy)
}

// safeEvictionPolicy: never evicts a key without a TTL.
func safeEvictionPolicy(p string) bool {
	return p == "noeviction" || strings.HasPrefix(p, "volatile-")
}

// CheckEvictionPolicy reads maxmemory-policy (from INFO memory, which
// managed Redis services allow where CONFIG is renamed) on every master and
// returns an *EvictionPolicyError for the first that may evict keys without
// a TTL, or an unavailable error if a master cannot be asked.
func (s *RedisStore) CheckEvictionPolicy(ctx context.Context) error {
	var mu sync.Mutex
	var found error
	check := func(ctx context.Context, node redis.Cmdable, addr string) error {
		info, err := node.Info(ctx, "memory").Result()
		if err != nil {
			return unavailable("info memory", err)
		}
		for line := range strings.SplitSeq(info, "\n") {
			if p, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok && !safeEvictionPolicy(p) {
				mu.Lock()
				found = &EvictionPolicyError{Addr: addr, Policy: p}
				mu.Unlock()
			}
		}
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return check(ctx, node, node.Options().Addr)
		})
	case *redis.Client:
		err = check(ctx, c, c.Options().Addr)
	default:
		err = check(ctx, s.client, "")
	}
	if err != nil {
		return err
	}
	return found
}
