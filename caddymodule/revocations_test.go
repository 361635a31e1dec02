package caddymodule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// TestStorageJournal: pending sign-outs kept in Caddy's storage survive a
// new journal on the same storage (a restart), per realm, hold no cookie
// token, and a damaged entry is left out rather than failing the rest.
func TestStorageJournal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := &certmagic.FileStorage{Path: dir}
	j := storageJournal{st, revocationsDir("https://app.example.com convex")}
	if got, err := j.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("an empty storage lists %v, %v", got, err)
	}
	mem := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = mem.Close() })
	token, _, err := mem.Create(ctx, session.NewSession{UserID: "user-1"})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := session.RefOf(token)
	kept := edge.PendingRevocation{Ref: ref, UserID: "user-1", All: true, At: time.Unix(1_800_000_000, 0).UTC()}
	if err := j.Put(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if err := j.Put(ctx, edge.PendingRevocation{}); err == nil {
		t.Fatal("a revocation without a session was kept")
	}
	if err := os.WriteFile(filepath.Join(dir, j.dir, "damaged.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}

	again := storageJournal{&certmagic.FileStorage{Path: dir}, revocationsDir("https://app.example.com convex")}
	got, err := again.List(ctx)
	if err != nil || len(got) != 1 || got[0] != kept {
		t.Fatalf("after a restart the journal lists %+v, %v; want %+v", got, err, kept)
	}
	other := storageJournal{st, revocationsDir("https://other.example.com convex")}
	if got, err := other.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("another realm's journal lists %v, %v", got, err)
	}
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if strings.Contains(string(b), token) {
			t.Errorf("%s holds the cookie's token", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := again.Remove(ctx, ref.SessionID); err != nil {
		t.Fatal(err)
	}
	if err := again.Remove(ctx, ref.SessionID); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if got, err := j.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after Remove the journal lists %v, %v", got, err)
	}
}
