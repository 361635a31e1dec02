package session

import (
	"container/list"
	"sync"
	"time"
)

// Defaults for the local lookup cache (RedisConfig.CacheSize, CacheTTL).
//
// A cached session costs about 540 bytes of heap with a typical profile
// (BenchmarkCacheBytesPerEntry), so the default size holds 100,000 active
// sessions in about 54 MB (up to twice that in RSS with Go's default GC
// headroom).
//
// The TTL bounds how long a session that left Redis without a revocation
// message (evicted, lost in a failover) can still be served from a cache;
// revocations reach every cache over pub/sub, and the cache is bypassed and
// flushed whenever that subscription is down. It is longer than the touch
// interval, so a session in use is reread by its background last-use write
// (which also drops it if it is gone) before its entry expires, and never
// costs a Redis call on the request path.
const (
	DefaultCacheSize = 100000
	DefaultCacheTTL  = 5 * time.Minute
)

// localCache is a bounded LRU of successful lookups, keyed by session ID
// (the token's hash). Only sessions that exist are cached, so a flood of
// random cookies cannot grow it; each such cookie costs one store lookup.
//
// Every revocation and flush bumps epoch; a lookup that started before a bump
// does not insert its result, so a revocation that races a lookup cannot
// leave a revoked session cached.
type localCache struct {
	maxEntries int
	ttl        time.Duration

	mu      sync.Mutex
	order   *list.List // front: most recently used
	entries map[string]*list.Element
	epoch   uint64
}

type cacheEntry struct {
	sess     *Session // never modified once cached; callers get clones
	cachedAt time.Time
}

func newLocalCache(maxEntries int, ttl time.Duration) *localCache {
	return &localCache{
		maxEntries: maxEntries,
		ttl:        ttl,
		order:      list.New(),
		entries:    make(map[string]*list.Element),
	}
}

// get returns a copy of the cached session if it may be served at now: the
// entry is younger than the TTL and the session has not expired, idle
// expiry judged by the cached last use (never later than the store's).
// touchDue says that last use is due to be written; the caller writes it
// off the request path and then calls touched.
func (c *localCache) get(id string, now time.Time, opts Options) (sess *Session, touchDue bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	age := now.Sub(e.cachedAt)
	if age < 0 || age >= c.ttl || e.sess.expired(now, opts.IdleTTL) {
		c.order.Remove(el)
		delete(c.entries, id)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.sess.clone(), opts.needsTouch(e.sess, now)
}

// touched records that last use at now is being written in the background:
// later lookups see it and do not queue another write. The entry keeps its
// cachedAt, so the TTL still counts from the last store read.
func (c *localCache) touched(id string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	if !ok {
		return
	}
	e := el.Value.(*cacheEntry)
	if !now.After(e.sess.LastUsedAt) {
		return
	}
	sess := e.sess.clone()
	sess.LastUsedAt = now
	el.Value = &cacheEntry{sess: sess, cachedAt: e.cachedAt}
}

// remove forgets one entry without bumping the epoch: for entries found
// stale, not for revocations.
func (c *localCache) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok {
		c.order.Remove(el)
		delete(c.entries, id)
	}
}

// currentEpoch is read before a store lookup and passed to put.
func (c *localCache) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// put caches s unless a revocation or flush happened since epoch was read.
func (c *localCache) put(s *Session, now time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if el, ok := c.entries[s.ID]; ok {
		el.Value = &cacheEntry{sess: s, cachedAt: now}
		c.order.MoveToFront(el)
		return
	}
	c.entries[s.ID] = c.order.PushFront(&cacheEntry{sess: s, cachedAt: now})
	for c.order.Len() > c.maxEntries {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).sess.ID)
	}
}

// drop forgets the given sessions.
func (c *localCache) drop(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, id := range ids {
		if el, ok := c.entries[id]; ok {
			c.order.Remove(el)
			delete(c.entries, id)
		}
	}
}

// flush forgets everything.
func (c *localCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.order.Init()
	clear(c.entries)
}

func (c *localCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
