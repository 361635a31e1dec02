package issuer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
)

// memStorage is an in-memory KeyStorage whose Lock excludes other holders
// like a storage shared between processes does.
type memStorage struct {
	mu     sync.Mutex
	data   map[string][]byte
	locks  map[string]chan struct{} // closed on Unlock
	stores int
	locked int
	// onLoad, if set, runs at the start of every Load, outside mu.
	onLoad func()
	// notFound is the error Load returns for an absent name.
	notFound error
	loadErr  error
}

func newMemStorage() *memStorage {
	return &memStorage{data: map[string][]byte{}, locks: map[string]chan struct{}{}, notFound: ErrKeyNotFound}
}

func (s *memStorage) Load(_ context.Context, name string) ([]byte, error) {
	if s.onLoad != nil {
		s.onLoad()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	v, ok := s.data[name]
	if !ok {
		return nil, fmt.Errorf("load %s: %w", name, s.notFound)
	}
	return append([]byte(nil), v...), nil
}

func (s *memStorage) Store(_ context.Context, name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[name] = append([]byte(nil), value...)
	s.stores++
	return nil
}

func (s *memStorage) Lock(ctx context.Context, name string) error {
	for {
		s.mu.Lock()
		held, ok := s.locks[name]
		if !ok {
			s.locks[name] = make(chan struct{})
			s.locked++
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *memStorage) Unlock(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	held, ok := s.locks[name]
	if !ok {
		return fmt.Errorf("unlock %s: not locked", name)
	}
	delete(s.locks, name)
	close(held)
	return nil
}

func (s *memStorage) heldLocks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.locks)
}

func TestLoadOrCreateKeyringGeneratesThenLoads(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []Algorithm{"", RS256, EdDSA, ES256} {
		t.Run(cmp.Or(string(alg), "default"), func(t *testing.T) {
			st := newMemStorage()
			now := newFakeClock().Now()
			firstKr, err := LoadOrCreateKeyring(ctx, st, testKeyringName, alg, now)
			if err != nil {
				t.Fatal(err)
			}
			first := firstKr.Current
			wantAlg := alg
			if wantAlg == "" {
				wantAlg = RS256
			}
			if first.Algorithm() != wantAlg {
				t.Fatalf("generated %s key, want %s", first.Algorithm(), wantAlg)
			}
			if st.stores != 1 {
				t.Fatalf("stored %d times, want 1", st.stores)
			}
			// A restart with the same storage: same key, nothing generated.
			secondKr, err := LoadOrCreateKeyring(ctx, st, testKeyringName, alg, now)
			if err != nil {
				t.Fatal(err)
			}
			if second := secondKr.Current; second.ID() != first.ID() {
				t.Fatalf("second call kid %s, want the stored key's %s", secondKr.Current.ID(), first.ID())
			}
			if st.stores != 1 || st.locked != 1 {
				t.Fatalf("second call stored %d / locked %d times in total, want 1 / 1", st.stores, st.locked)
			}
			if st.heldLocks() != 0 {
				t.Fatalf("a lock is still held")
			}
		})
	}
}

func TestLoadOrCreateKeyringStorageErrors(t *testing.T) {
	ctx := context.Background()
	now := newFakeClock().Now()

	t.Run("load fails", func(t *testing.T) {
		st := newMemStorage()
		st.loadErr = errors.New("disk on fire")
		_, err := LoadOrCreateKeyring(ctx, st, "key", "", now)
		if !errors.Is(err, st.loadErr) {
			t.Fatalf("error %v, want the storage's error", err)
		}
		if st.stores != 0 {
			t.Fatalf("generated a key although the storage could not be read")
		}
	})

	t.Run("lock fails", func(t *testing.T) {
		st := newMemStorage()
		st.locks["key"] = make(chan struct{}) // held by someone else, forever
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := LoadOrCreateKeyring(cctx, st, "key", "", now)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want lock failure", err)
		}
	})

	t.Run("fs.ErrNotExist means absent", func(t *testing.T) {
		st := newMemStorage()
		st.notFound = fs.ErrNotExist
		if _, err := LoadOrCreateKeyring(ctx, st, "key", EdDSA, now); err != nil {
			t.Fatal(err)
		}
		if st.stores != 1 {
			t.Fatalf("stored %d times, want 1", st.stores)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		if _, err := LoadOrCreateKeyring(ctx, nil, "key", "", now); err == nil {
			t.Fatal("nil storage accepted")
		}
		if _, err := LoadOrCreateKeyring(ctx, newMemStorage(), "", "", now); err == nil {
			t.Fatal("empty name accepted")
		}
		if _, err := LoadOrCreateKeyring(ctx, newMemStorage(), "key", "HS256", now); err == nil {
			t.Fatal("unknown algorithm accepted")
		}
	})
}
