package caddymodule

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// defaultTokenCacheSize bounds the tokens kept for reuse; entries live a few
// seconds, so this is the number of sessions active within that window.
const defaultTokenCacheSize = 100_000

const tokenCacheShards = 16

// tokenCache keeps the token last minted for each session so that requests
// within the reuse window skip signing. Reuse is keyed to the issuer and key
// that minted the token, so a reload or a rotation never serves a stale one.
type tokenCache struct {
	seed   maphash.Seed
	shards [tokenCacheShards]tokenShard
	limit  int // per shard
}

type tokenShard struct {
	mu sync.Mutex
	m  map[string]cachedToken
}

type cachedToken struct {
	token     string
	issuedAt  time.Time
	expiresAt time.Time
	minter    *issuer.Issuer
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

// get returns a token for sessionID minted by iss with its current key no
// more than reuse ago.
func (c *tokenCache) get(sessionID string, iss *issuer.Issuer, now time.Time, reuse time.Duration) (cachedToken, bool) {
	s := c.shard(sessionID)
	s.mu.Lock()
	t, ok := s.m[sessionID]
	s.mu.Unlock()
	if !ok || t.minter != iss || now.Sub(t.issuedAt) > reuse || now.Before(t.issuedAt) || t.keyID != iss.SigningKey().ID() {
		return cachedToken{}, false
	}
	return t, true
}

func (c *tokenCache) put(sessionID string, t cachedToken) {
	s := c.shard(sessionID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.limit {
		// Entries outlive their use within seconds: sweep those, and if
		// the shard is still full, start over rather than grow.
		cutoff := time.Now().Add(-MaxTokenReuse)
		for k, v := range s.m {
			if v.issuedAt.Before(cutoff) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= c.limit {
			clear(s.m)
		}
	}
	s.m[sessionID] = t
}

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
