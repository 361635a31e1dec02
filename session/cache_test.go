package session

import (
	"fmt"
	"testing"
	"time"
)

func cachedSession(id string, now time.Time) *Session {
	return &Session{ID: id, UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastUsedAt: now}
}

func TestLocalCacheServesFreshEntriesOnly(t *testing.T) {
	opts := Options{IdleTTL: 10 * time.Minute, TouchInterval: time.Minute}.withDefaults()
	now := time.UnixMilli(1_700_000_000_000)
	c := newLocalCache(10, 5*time.Second)
	c.put(cachedSession("a", now), now, c.currentEpoch())
	if c.get("a", now.Add(4*time.Second), opts) == nil {
		t.Fatal("fresh entry not served")
	}
	if c.get("a", now.Add(5*time.Second), opts) != nil {
		t.Fatal("entry served at its TTL")
	}
	if c.len() != 0 {
		t.Fatal("stale entry kept")
	}
	// A touch is due: not served from cache even within the cache TTL.
	s := cachedSession("b", now.Add(-time.Minute))
	c.put(s, now, c.currentEpoch())
	if c.get("b", now, opts) != nil {
		t.Fatal("served although a touch is due")
	}
	// Expired sessions are not served.
	s = cachedSession("c", now)
	s.ExpiresAt = now.Add(time.Second)
	c.put(s, now, c.currentEpoch())
	if c.get("c", now.Add(time.Second), opts) != nil {
		t.Fatal("served an expired session")
	}
	// A clock that went backwards does not make entries immortal.
	c.put(cachedSession("d", now), now, c.currentEpoch())
	if c.get("d", now.Add(-time.Second), opts) != nil {
		t.Fatal("served an entry from the future")
	}
}

func TestLocalCacheIsBoundedLRU(t *testing.T) {
	opts := Options{}.withDefaults()
	now := time.UnixMilli(1_700_000_000_000)
	c := newLocalCache(3, time.Minute)
	for i := range 3 {
		c.put(cachedSession(fmt.Sprint(i), now), now, c.currentEpoch())
	}
	c.get("0", now, opts) // 0 is now the most recent; 1 the least
	c.put(cachedSession("3", now), now, c.currentEpoch())
	if c.len() != 3 {
		t.Fatalf("len %d; want 3", c.len())
	}
	if c.get("1", now, opts) != nil || c.get("0", now, opts) == nil || c.get("3", now, opts) == nil {
		t.Fatal("did not evict the least recently used entry")
	}
}

func TestLocalCacheRevocationBeatsARacingLookup(t *testing.T) {
	opts := Options{}.withDefaults()
	now := time.UnixMilli(1_700_000_000_000)
	c := newLocalCache(10, time.Minute)
	epoch := c.currentEpoch() // a lookup starts
	c.drop("a")               // the session is revoked meanwhile
	c.put(cachedSession("a", now), now, epoch)
	if c.get("a", now, opts) != nil {
		t.Fatal("a lookup that raced a revocation cached the revoked session")
	}
	c.put(cachedSession("b", now), now, c.currentEpoch())
	c.flush()
	if c.len() != 0 {
		t.Fatal("flush kept entries")
	}
}

func TestLocalCacheGetReturnsCopies(t *testing.T) {
	opts := Options{}.withDefaults()
	now := time.UnixMilli(1_700_000_000_000)
	c := newLocalCache(10, time.Minute)
	c.put(cachedSession("a", now), now, c.currentEpoch())
	c.get("a", now, opts).UserID = "mallory"
	if c.get("a", now, opts).UserID != "u" {
		t.Fatal("a caller changed the cached session")
	}
}
