package session

import (
	"context"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// TestRedisProfileChangeReachesOtherInstances: a profile set through one
// instance replaces what another instance's cache holds of the session,
// and that instance's OnRevoke hooks (its token cache) hear of it.
func TestRedisProfileChangeReachesOtherInstances(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock() // frozen: B's cache entry never ages out on its own
	opts := Options{Now: clock.Now}
	prefix := uniquePrefix()
	a := newTestRedisStore(t, srv.Addr, false, prefix, 0, opts)
	b := newTestRedisStore(t, srv.Addr, false, prefix, 0, opts)
	bLog := watchRevocations(b)
	ctx := context.Background()

	tok, sess, err := a.Create(ctx, NewSession{UserID: "renamed", Profile: testProfile()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if get1(b.cache, sess.ID, clock.Now(), b.opts) == nil {
		t.Fatal("B did not cache the lookup")
	}
	p := testProfile()
	p.Name = "Augusta Ada King"
	if n, err := a.SetProfile(ctx, "renamed", p); err != nil || n != 1 {
		t.Fatalf("SetProfile = %d, %v", n, err)
	}
	waitFor(t, revocationDeadline, "B serves the new name", func() bool {
		got, err := b.Lookup(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		return got.Profile == p
	})
	if !bLog.has(sess.ID) {
		t.Error("B's OnRevoke hook was not called: its cached token would keep the old name")
	}
}
