package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// runInstanceRegistry checks the InstanceRegistry promises; runConformance
// runs it on every store.
func runInstanceRegistry(t *testing.T, s Store, clock *fakeClock) {
	t.Helper()
	reg, ok := s.(InstanceRegistry)
	if !ok {
		t.Fatalf("%T does not implement InstanceRegistry", s)
	}
	ctx := context.Background()
	const ttl = 30 * time.Second
	register := func(instance, storage, want string) {
		t.Helper()
		got, err := reg.RegisterInstance(ctx, instance, storage, ttl)
		if err != nil || got != want {
			t.Fatalf("RegisterInstance(%s, %s) = %q, %v; want %q", instance, storage, got, err, want)
		}
	}
	unregister := func(instance, storage string) {
		t.Helper()
		if err := reg.UnregisterInstance(ctx, instance, storage); err != nil {
			t.Fatalf("UnregisterInstance(%s, %s): %v", instance, storage, err)
		}
	}

	// Instances on one storage agree; one on another storage is refused
	// and recorded nowhere.
	register("a", "s1", "")
	register("b", "s1", "")
	register("c", "s2", "s1")
	register("a", "s1", "") // a refresh
	register("c", "s2", "s1")

	// An instance moving to another storage (a reload) conflicts with the
	// others on the old one, but not with its own old record.
	register("a", "s2", "s1")
	unregister("b", "s1")
	register("a", "s2", "")
	register("c", "s1", "s2") // a's old record was replaced
	register("c", "s2", "")

	// Records lapse: an instance that stopped without unregistering stops
	// counting after its TTL.
	clock.Advance(ttl - time.Second)
	register("d", "s3", "s2")
	clock.Advance(2 * time.Second)
	register("d", "s3", "")

	// Unregistering removes only that record.
	unregister("d", "s3")
	unregister("d", "s3") // already gone: no error
	register("e", "s4", "")

	for _, bad := range [][2]string{{"", "s"}, {"i", ""}, {"i j", "s"}, {"i", "s t"}, {strings.Repeat("i", MaxInstanceIDBytes+1), "s"}} {
		if _, err := reg.RegisterInstance(ctx, bad[0], bad[1], ttl); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("RegisterInstance(%q, %q) = %v; want an input error", bad[0], bad[1], err)
		}
	}
	if _, err := reg.RegisterInstance(ctx, "i", "s", 0); err == nil {
		t.Error("RegisterInstance with TTL 0 succeeded")
	}
}
