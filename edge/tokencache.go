package edge

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

const tokenCacheShards = 16

// tokenCache keeps the token last minted for each session so that requests
// within the reuse window skip signing. Each Gateway has its own, so a
// reload starts cold; reuse is keyed to the signing key, so a rotation never
// serves a token signed with the old one.
type tokenCache struct {
	seed   maphash.Seed
	shards [tokenCacheShards]tokenShard
	limit  int // per shard
	// minting collapses concurrent mints for one session into one: when a
	// busy session's token goes stale, its in-flight requests all miss at
	// once, and each would otherwise sign (about 1 ms with RS256).
	minting singleflight.Group
	mints   atomic.Uint64 // tokens minted for requests, for tests and metrics
}

type tokenShard struct {
	mu    sync.Mutex
	m     map[string]cachedToken
	swept time.Time // last sweep of tokens past any reuse window
}

// tokenSweepInterval: each shard drops the tokens that no reuse window can
// serve any more at most this often. Tokens are big (most of a kilobyte),
// so the cache holds only those minted within the last two intervals, not
// its capacity's worth.
const tokenSweepInterval = MaxTokenReuse

type cachedToken struct {
	token     string
	issuedAt  time.Time
	expiresAt time.Time
	keyID     string
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), limit: max(size/tokenCacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedToken)
	}
	return c
}

func (c *tokenCache) shard(sessionID string) *tokenShard {
	return &c.shards[maphash.String(c.seed, sessionID)%tokenCacheShards]
}

// get returns the token for sessionID signed with keyID no more than reuse
// ago.
func (c *tokenCache) get(sessionID, keyID string, now time.Time, reuse time.Duration) (cachedToken, bool) {
	s := c.shard(sessionID)
	s.mu.Lock()
	t, ok := s.m[sessionID]
	s.mu.Unlock()
	if !ok || now.Sub(t.issuedAt) > reuse || now.Before(t.issuedAt) || t.keyID != keyID {
		return cachedToken{}, false
	}
	return t, true
}

// getOrMint returns the session's reusable token, or mints one with mint and
// keeps it. Concurrent misses for one session share one mint. minted says
// whether this call signed.
func (c *tokenCache) getOrMint(sessionID, keyID string, reuse time.Duration, mint func() (cachedToken, error)) (t cachedToken, minted bool, err error) {
	if t, ok := c.get(sessionID, keyID, time.Now(), reuse); ok {
		return t, false, nil
	}
	v, err, _ := c.minting.Do(sessionID, func() (any, error) {
		// A mint that finished just before this one started has left a
		// fresh token.
		if t, ok := c.get(sessionID, keyID, time.Now(), reuse); ok {
			return t, nil
		}
		c.mints.Add(1)
		t, err := mint()
		if err != nil {
			return nil, err
		}
		minted = true
		c.put(sessionID, t)
		return t, nil
	})
	if err != nil {
		return cachedToken{}, false, err
	}
	return v.(cachedToken), minted, nil
}

func (c *tokenCache) put(sessionID string, t cachedToken) {
	s := c.shard(sessionID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); len(s.m) >= c.limit || now.Sub(s.swept) >= tokenSweepInterval {
		s.sweep(now)
		// Still full: start over rather than grow.
		if len(s.m) >= c.limit {
			clear(s.m)
		}
	}
	s.m[sessionID] = t
}

// sweep drops the tokens past the longest reuse window. A map keeps its
// buckets when emptied, so one that shrank to a small part of its size is
// copied into a new one.
func (s *tokenShard) sweep(now time.Time) {
	s.swept = now
	cutoff := now.Add(-MaxTokenReuse)
	before := len(s.m)
	for k, v := range s.m {
		if v.issuedAt.Before(cutoff) {
			delete(s.m, k)
		}
	}
	if left := len(s.m); before >= tokenShardRebuildMin && left < before/4 {
		m := make(map[string]cachedToken, 2*left)
		for k, v := range s.m {
			m[k] = v
		}
		s.m = m
	}
}

// tokenShardRebuildMin: smaller maps are not worth copying after a sweep.
const tokenShardRebuildMin = 1024

// drop forgets a session's token: it was signed out or revoked.
func (c *tokenCache) drop(sessionID string) {
	s := c.shard(sessionID)
	s.mu.Lock()
	delete(s.m, sessionID)
	s.mu.Unlock()
}

// dropAll forgets every token: revocations may have been missed.
func (c *tokenCache) dropAll() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}
