package session

import (
	"sync"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
)

// fakeClock is an injected clock that moves only when told.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock {
	// Near the real time, so relative Redis TTLs look like production ones.
	return testclock.New(time.Now().Truncate(time.Millisecond))
}

// revocationLog records OnRevoke and OnRevokeAll calls.
type revocationLog struct {
	mu  sync.Mutex
	ids map[string]int
	all int
}

func watchRevocations(s Store) *revocationLog {
	l := &revocationLog{ids: map[string]int{}}
	s.OnRevoke(func(id string) {
		l.mu.Lock()
		l.ids[id]++
		l.mu.Unlock()
	})
	s.OnRevokeAll(func() {
		l.mu.Lock()
		l.all++
		l.mu.Unlock()
	})
	return l
}

func (l *revocationLog) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[id] > 0
}

func (l *revocationLog) allCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all
}

// eventually bounds the wait for a condition that must come to hold (a
// subscription connects, a revocation arrives, the store answers again). It
// is generous on purpose: a starved CPU delays all of these, and how soon
// they happen is measured by benchmarks (BenchmarkRevocationReachesOtherInstance),
// not asserted here.
const eventually = 30 * time.Second

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testProfile() Profile {
	return Profile{
		Email:         "ada.lovelace@example.com",
		EmailVerified: true,
		Name:          "Ada Lovelace",
		Picture:       "https://avatars.githubusercontent.com/u/12345678?v=4",
	}
}

// settleTouches waits until s has written the last uses it queued (a
// RedisStore with its cache writes them in the background).
func settleTouches(t testing.TB, s Store) {
	t.Helper()
	if r, ok := s.(*RedisStore); ok && r.touches != nil {
		waitFor(t, eventually, "background last-use writes", r.touches.settled)
	}
}
