package seal

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/keystoragetest"
)

func TestSealOpens(t *testing.T) {
	ctx := context.Background()
	k := Ephemeral()
	sealed := k.Seal([]byte("state"), []byte("aad"))
	if strings.Contains(sealed, "state") {
		t.Fatal("the sealed value shows the plain text")
	}
	got, err := k.Open(ctx, sealed, []byte("aad"))
	if err != nil || string(got) != "state" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if k.Seal([]byte("state"), []byte("aad")) == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	// Another context, a flipped byte, a truncation or another key: no.
	if _, err := k.Open(ctx, sealed, []byte("other")); !errors.Is(err, ErrOpen) {
		t.Fatalf("other aad: %v", err)
	}
	b := []byte(sealed)
	b[len(b)-3] ^= 1
	if _, err := k.Open(ctx, string(b), []byte("aad")); !errors.Is(err, ErrOpen) {
		t.Fatalf("damaged: %v", err)
	}
	if _, err := k.Open(ctx, sealed[:20], []byte("aad")); !errors.Is(err, ErrOpen) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := Ephemeral().Open(ctx, sealed, []byte("aad")); !errors.Is(err, ErrOpen) {
		t.Fatalf("another key: %v", err)
	}
}

func TestStoredRingIsSharedAndRotates(t *testing.T) {
	ctx := context.Background()
	st := &keystoragetest.Storage{}
	t0 := time.Now()
	a, err := LoadOrCreate(ctx, st, "flow", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(ctx, st, "flow", time.Hour, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	old := a.Seal([]byte("v"), nil)
	if _, err := b.Open(ctx, old, nil); err != nil {
		t.Fatalf("a second instance cannot open the first's value: %v", err)
	}
	// A start past the rotation period rotates; the old key still opens.
	c, err := LoadOrCreate(ctx, st, "flow", time.Hour, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx, old, nil); err != nil {
		t.Fatalf("the previous key no longer opens: %v", err)
	}
	fresh := c.Seal([]byte("v"), nil)
	if fresh[:6] == old[:6] {
		t.Fatal("the rotated ring seals with the old key")
	}
	// The instance started before the rotation picks up the new key.
	if _, err := a.Open(ctx, fresh, nil); err != nil {
		t.Fatalf("an older instance cannot open a value sealed with the rotated key: %v", err)
	}
	// Two rotations later, the first key is gone.
	if _, err := LoadOrCreate(ctx, st, "flow", time.Hour, t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, err := LoadOrCreate(ctx, st, "flow", time.Hour, t0.Add(4*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(ctx, old, nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("a key two rotations old still opens: %v", err)
	}
}

func TestRunningRingRotatesItself(t *testing.T) {
	ctx := context.Background()
	st := &keystoragetest.Storage{}
	k, err := LoadOrCreate(ctx, st, "flow", 100*time.Millisecond, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	first := k.Seal([]byte("v"), nil)
	time.Sleep(150 * time.Millisecond)
	var rotated string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s := k.Seal([]byte("v"), nil); s[:6] != first[:6] {
			rotated = s
			break
		}
	}
	if rotated == "" {
		t.Fatal("a ring past its rotation period kept sealing with its first key")
	}
	if _, err := k.Open(ctx, first, nil); err != nil {
		t.Fatalf("the previous key no longer opens after a running rotation: %v", err)
	}
	// Another instance on the storage opens the rotated key's values.
	other, err := LoadOrCreate(ctx, st, "flow", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(ctx, rotated, nil); err != nil {
		t.Fatalf("another instance cannot open a value of the rotated key: %v", err)
	}
}
