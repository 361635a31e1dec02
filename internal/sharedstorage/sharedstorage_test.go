package sharedstorage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/keystoragetest"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// storageWithID is a storage whose identity is id.
func storageWithID(id string) *keystoragetest.Storage {
	st := &keystoragetest.Storage{}
	_ = st.Store(context.Background(), IDName, []byte(id))
	return st
}

func TestStorageIDIsMadeOnceAndKept(t *testing.T) {
	ctx := context.Background()
	st := &keystoragetest.Storage{}
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := LoadOrCreateID(ctx, st)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || len(id) != 32 {
			t.Fatalf("concurrent starters got %v; want one 32-digit identity", ids)
		}
	}
	if again, _ := LoadOrCreateID(ctx, st); again != ids[0] {
		t.Fatalf("identity changed from %s to %s", ids[0], again)
	}
	if other, _ := LoadOrCreateID(ctx, &keystoragetest.Storage{}); other == ids[0] {
		t.Fatal("two storages got one identity")
	}

	_ = st.Store(ctx, IDName, []byte("not hex"))
	if _, err := LoadOrCreateID(ctx, st); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("a damaged identity gave %v; want an error saying so", err)
	}
}

func TestJoinRefusesAnotherStorage(t *testing.T) {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Options{})
	defer store.Close()
	// Another process, live, on storage "aaaa".
	if other, err := store.RegisterInstance(ctx, "otherprocess", "aaaa", RecordTTL); err != nil || other != "" {
		t.Fatal(other, err)
	}

	_, err := Join(ctx, store, "https://app.example.com convex", storageWithID("bbbb"), zap.NewNop())
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Other != "aaaa" || conflict.Mine != "bbbb" {
		t.Fatalf("Join with another storage = %v; want a ConflictError naming both", err)
	}
	for _, want := range []string{"storage file_system", "signing_key", "caddy storage export"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q: %v", want, err)
		}
	}

	// On the same storage it joins, twice (two handlers, or a reload), and
	// the record stays until the last Leave.
	shared := storageWithID("aaaa")
	m1, err := Join(ctx, store, "realm", shared, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Join(ctx, store, "realm", shared, zap.NewNop())
	if err != nil || m2 != m1 {
		t.Fatalf("second Join: %v, same member %v", err, m2 == m1)
	}
	if err := store.UnregisterInstance(ctx, "otherprocess", "aaaa"); err != nil {
		t.Fatal(err)
	}
	m1.Leave()
	if other, _ := store.RegisterInstance(ctx, "newcomer", "cccc", RecordTTL); other != "aaaa" {
		t.Fatalf("after one of two Leaves, a newcomer on another storage saw %q; want this process's aaaa", other)
	}
	_ = store.UnregisterInstance(ctx, "newcomer", "cccc")
	m2.Leave()
	if other, _ := store.RegisterInstance(ctx, "newcomer", "cccc", RecordTTL); other != "" {
		t.Fatalf("after the last Leave, a newcomer on another storage saw %q; want no conflict", other)
	}
}

// A store that does not answer does not stop the start.
func TestJoinWithStoreDown(t *testing.T) {
	store := session.NewMemoryStore(session.Options{})
	store.Close()
	m, err := Join(context.Background(), store, "realm", storageWithID("aaaa"), zap.NewNop())
	if err != nil {
		t.Fatalf("Join with the store down = %v; want it to start", err)
	}
	m.Leave()
}
