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
	if get1(c, "a", now.Add(4*time.Second), opts) == nil {
		t.Fatal("fresh entry not served")
	}
	if get1(c, "a", now.Add(5*time.Second), opts) != nil {
		t.Fatal("entry served at its TTL")
	}
	if c.len() != 0 {
		t.Fatal("stale entry kept")
	}
	// A touch is due: served, and the caller is told to write last use.
	s := cachedSession("b", now.Add(-time.Minute))
	c.put(s, now, c.currentEpoch())
	if got, due := c.get("b", now, opts); got == nil || !due {
		t.Fatalf("get = %v, touch due %v; want the session, due", got, due)
	}
	c.touched("b", now)
	if got, due := c.get("b", now.Add(time.Second), opts); got == nil || due || !got.LastUsedAt.Equal(now) {
		t.Fatalf("after touched: get = %+v, touch due %v; want last use %v, not due", got, due, now)
	}
	// Idle expiry is judged by the cached last use.
	s = cachedSession("e", now.Add(-opts.IdleTTL+time.Second))
	c.put(s, now, c.currentEpoch())
	if got, _ := c.get("e", now.Add(time.Second), opts); got != nil {
		t.Fatal("served a session idle for idle_ttl")
	}
	// Expired sessions are not served.
	s = cachedSession("c", now)
	s.ExpiresAt = now.Add(time.Second)
	c.put(s, now, c.currentEpoch())
	if get1(c, "c", now.Add(time.Second), opts) != nil {
		t.Fatal("served an expired session")
	}
	// A clock that went backwards does not make entries immortal.
	c.put(cachedSession("d", now), now, c.currentEpoch())
	if get1(c, "d", now.Add(-time.Second), opts) != nil {
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
	if get1(c, "1", now, opts) != nil || get1(c, "0", now, opts) == nil || get1(c, "3", now, opts) == nil {
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
	if get1(c, "a", now, opts) != nil {
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
	get1(c, "a", now, opts).UserID = "mallory"
	if get1(c, "a", now, opts).UserID != "u" {
		t.Fatal("a caller changed the cached session")
	}
}

func get1(c *localCache, id string, now time.Time, opts Options) *Session {
	s, _ := c.get(id, now, opts)
	return s
}
