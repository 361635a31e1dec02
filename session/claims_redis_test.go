package session

import (
	"context"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

func TestMemoryClaimsConformance(t *testing.T) {
	runClaimsConformance(t, func(t *testing.T, opts Options) (Store, func() []string) {
		return NewMemoryStore(opts), nil
	})
}

func TestRedisClaimsConformance(t *testing.T) {
	srv := redistest.StartServer(t)
	t.Run("no cache", func(t *testing.T) { runClaimsConformance(t, redisBackend(srv.Addr, false, -1)) })
	t.Run("cache", func(t *testing.T) { runClaimsConformance(t, redisBackend(srv.Addr, false, 0)) })
}

// TestRedisClaimsChangesReachEveryInstance: a refresh and a context switch
// made on one instance reach another's hooks (polled generously: the
// second's promise is a benchmark's, as revocation's is); its own
// messages are not applied twice.
func TestRedisClaimsChangesReachEveryInstance(t *testing.T) {
	srv := redistest.StartServer(t)
	prefix := uniquePrefix()
	a := newTestRedisStore(t, srv.Addr, false, prefix, 0, Options{})
	b := newTestRedisStore(t, srv.Addr, false, prefix, 0, Options{})
	if !a.ClaimsChangesLive() || !b.ClaimsChangesLive() {
		t.Fatal("subscribed stores say changes are not live")
	}
	ctx := context.Background()
	onA, onB := watchClaims(a), watchClaims(b)
	revokedOnB := watchRevocations(b)
	_, sess, err := a.Create(ctx, NewSession{UserID: "user with spaces"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.RefreshClaims(ctx, sess.UserID, time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "the refresh on the second instance", func() bool { return onB.sawUser(sess.UserID) })
	t.Logf("a refresh reached the second instance after %s", time.Since(start))
	if err := a.SetClaimsContext(ctx, sess.UserID, sess.ID, []byte(`{"org":"o1"}`), sess.ExpiresAt, ClaimsRecord{Claims: []byte(`{}`), FetchedAt: time.Now(), Generation: 1}, time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "the context switch on the second instance", func() bool { return onB.sawSession(sess.ID) })
	// The sender applied its own change once, when it made it.
	time.Sleep(100 * time.Millisecond)
	onA.mu.Lock()
	defer onA.mu.Unlock()
	if len(onA.users) != 1 || len(onA.sessions) != 1 {
		t.Fatalf("the sender's hooks ran %d and %d times; want once each", len(onA.users), len(onA.sessions))
	}
	// Claims messages never pass for revocations.
	if revokedOnB.has(sess.ID) || revokedOnB.has(sess.UserID) {
		t.Fatal("a claims message revoked the session")
	}
}
