package sharedstorage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// memStorage is a KeyStorage in memory, with a real lock.
type memStorage struct {
	mu    sync.Mutex
	data  map[string][]byte
	locks map[string]*sync.Mutex
}

func newMemStorage() *memStorage {
	return &memStorage{data: map[string][]byte{}, locks: map[string]*sync.Mutex{}}
}

func (s *memStorage) Load(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.data[name]
	if !ok {
		return nil, issuer.ErrKeyNotFound
	}
	return b, nil
}

func (s *memStorage) Store(_ context.Context, name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[name] = value
	return nil
}

func (s *memStorage) lock(name string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[name] == nil {
		s.locks[name] = new(sync.Mutex)
	}
	return s.locks[name]
}

func (s *memStorage) Lock(_ context.Context, name string) error   { s.lock(name).Lock(); return nil }
func (s *memStorage) Unlock(_ context.Context, name string) error { s.lock(name).Unlock(); return nil }

// storageWithID is a storage whose identity is id.
func storageWithID(id string) *memStorage {
	st := newMemStorage()
	st.data[IDName] = []byte(id)
	return st
}

func TestStorageIDIsMadeOnceAndKept(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
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
	if other, _ := LoadOrCreateID(ctx, newMemStorage()); other == ids[0] {
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
