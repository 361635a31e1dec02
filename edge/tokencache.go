package edge

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/convex-auth/caddy-convex-auth/authz"
)

const tokenCacheShards = 16

// tokenCache keeps the token last minted for each session so that requests
// the reuse policy allows skip signing. Each Gateway has its own, so a
// reload starts cold; reuse is keyed to the signing key, so a rotation never
// serves a token signed with the old one.
type tokenCache struct {
	seed   maphash.Seed
	shards [tokenCacheShards]tokenShard
	limit  int // per shard
	reuse  reusePolicy
	now    func() time.Time // the issuer's clock, which stamps iat and exp
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

// tokenSweepInterval: each shard drops the tokens its reuse policy no longer
// serves at most this often. Tokens are big (most of a kilobyte), so the
// cache holds only the reusable ones and those that stopped being reusable
// within the last interval, not its capacity's worth.
const tokenSweepInterval = MaxTokenReuse

// reusePolicy says which cached tokens may be injected again: one not older
// than maxAge (when set), with at least minLeft of its life left (when
// set).
type reusePolicy struct {
	maxAge  time.Duration
	minLeft time.Duration
}

func (p reusePolicy) allows(t cachedToken, now time.Time) bool {
	switch {
	case now.Before(t.issuedAt):
		return false // the clock went back: do not trust the token's age
	case p.maxAge > 0 && now.Sub(t.issuedAt) > p.maxAge:
		return false
	case p.minLeft > 0 && t.expiresAt.Sub(now) < p.minLeft:
		return false
	}
	return true
}

type cachedToken struct {
	token     string
	issuedAt  time.Time
	expiresAt time.Time
	keyID     string
	// claims are the custom claims it carries: a token is reused only
	// while the session's claims are these very ones (nil: none).
	claims *authz.Claims
}

func newTokenCache(size int, reuse reusePolicy, now func() time.Time) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), limit: max(size/tokenCacheShards, 1), reuse: reuse, now: now}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedToken)
	}
	return c
}

func (c *tokenCache) shard(sessionID string) *tokenShard {
	return &c.shards[maphash.String(c.seed, sessionID)%tokenCacheShards]
}

// get returns the token for sessionID signed with keyID and carrying
// claims, if the reuse policy allows it.
func (c *tokenCache) get(sessionID, keyID string, claims *authz.Claims) (cachedToken, bool) {
	s := c.shard(sessionID)
	s.mu.Lock()
	t, ok := s.m[sessionID]
	s.mu.Unlock()
	if !ok || t.keyID != keyID || t.claims != claims || !c.reuse.allows(t, c.now()) {
		return cachedToken{}, false
	}
	return t, true
}

// getOrMint returns the session's reusable token with claims, or mints one
// with mint and keeps it. Concurrent misses for one session share one mint. minted says
// whether this call signed.
func (c *tokenCache) getOrMint(sessionID, keyID string, claims *authz.Claims, mint func() (cachedToken, error)) (t cachedToken, minted bool, err error) {
	if t, ok := c.get(sessionID, keyID, claims); ok {
		return t, false, nil
	}
	v, err, _ := c.minting.Do(sessionID, func() (any, error) {
		// A mint that finished just before this one started has left a
		// fresh token.
		if t, ok := c.get(sessionID, keyID, claims); ok {
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
	if now := c.now(); len(s.m) >= c.limit || now.Sub(s.swept) >= tokenSweepInterval || now.Before(s.swept) {
		s.sweep(now, c.reuse)
		// Still full: start over rather than grow.
		if len(s.m) >= c.limit {
			clear(s.m)
		}
	}
	s.m[sessionID] = t
}

// sweep drops the tokens the reuse policy no longer allows. A map keeps its
// buckets when emptied, so one that shrank to a small part of its size is
// copied into a new one.
func (s *tokenShard) sweep(now time.Time, reuse reusePolicy) {
	s.swept = now
	before := len(s.m)
	for k, v := range s.m {
		if !reuse.allows(v, now) {
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
