package issuer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
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

func TestLoadOrGenerateKeyGeneratesThenLoads(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []Algorithm{"", RS256, EdDSA, ES256} {
		t.Run(cmp.Or(string(alg), "default"), func(t *testing.T) {
			st := newMemStorage()
			first, err := LoadOrGenerateKey(ctx, st, "convex_auth/signing_key.pem", alg)
			if err != nil {
				t.Fatal(err)
			}
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
			if stored := string(st.data["convex_auth/signing_key.pem"]); !strings.HasPrefix(stored, "-----BEGIN PRIVATE KEY-----") {
				t.Fatalf("stored value is not a PKCS#8 PEM")
			}
			// A restart with the same storage: same key, nothing generated.
			second, err := LoadOrGenerateKey(ctx, st, "convex_auth/signing_key.pem", alg)
			if err != nil {
				t.Fatal(err)
			}
			if second.ID() != first.ID() {
				t.Fatalf("second call kid %s, want the stored key's %s", second.ID(), first.ID())
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

func TestLoadOrGenerateKeyConcurrentCallersGetOneKey(t *testing.T) {
	const callers = 8
	st := newMemStorage()
	// Hold the first load of every caller until all have made it, so that
	// all of them find no key and race for the lock.
	var arrived sync.WaitGroup
	arrived.Add(callers)
	var loads sync.Mutex
	loadCount := 0
	st.onLoad = func() {
		loads.Lock()
		loadCount++
		first := loadCount <= callers
		loads.Unlock()
		if first {
			arrived.Done()
			arrived.Wait()
		}
	}

	kids := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for n := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrGenerateKey(context.Background(), st, "key", EdDSA)
			errs[n] = err
			if err == nil {
				kids[n] = k.ID()
			}
		}()
	}
	wg.Wait()
	for n := range callers {
		if errs[n] != nil {
			t.Fatalf("caller %d: %v", n, errs[n])
		}
		if kids[n] != kids[0] {
			t.Fatalf("caller %d got kid %s, caller 0 got %s", n, kids[n], kids[0])
		}
	}
	if st.stores != 1 {
		t.Fatalf("key stored %d times, want 1", st.stores)
	}
	if st.heldLocks() != 0 {
		t.Fatalf("a lock is still held")
	}
}

func TestLoadOrGenerateKeyErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("stored algorithm differs", func(t *testing.T) {
		st := newMemStorage()
		if _, err := LoadOrGenerateKey(ctx, st, "key", EdDSA); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrGenerateKey(ctx, st, "key", ES256)
		if err == nil || !strings.Contains(err.Error(), "is EdDSA but the configured algorithm is ES256") {
			t.Fatalf("error %v, want one naming EdDSA and ES256", err)
		}
		// No algorithm configured: whatever is stored is used.
		k, err := LoadOrGenerateKey(ctx, st, "key", "")
		if err != nil || k.Algorithm() != EdDSA {
			t.Fatalf("got %v, %v; want the stored EdDSA key", k, err)
		}
	})

	t.Run("stored value unusable", func(t *testing.T) {
		st := newMemStorage()
		st.data["key"] = []byte("not a pem")
		_, err := LoadOrGenerateKey(ctx, st, "key", "")
		if err == nil || !strings.Contains(err.Error(), `signing key "key" in storage is not usable`) {
			t.Fatalf("error %v, want unusable stored key", err)
		}
		if st.stores != 0 {
			t.Fatalf("an unusable stored key was overwritten")
		}
	})

	t.Run("load fails", func(t *testing.T) {
		st := newMemStorage()
		st.loadErr = errors.New("disk on fire")
		_, err := LoadOrGenerateKey(ctx, st, "key", "")
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
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
		_, err := LoadOrGenerateKey(cctx, st, "key", "")
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "lock signing key") {
			t.Fatalf("error %v, want lock failure", err)
		}
	})

	t.Run("fs.ErrNotExist means absent", func(t *testing.T) {
		st := newMemStorage()
		st.notFound = fs.ErrNotExist
		if _, err := LoadOrGenerateKey(ctx, st, "key", EdDSA); err != nil {
			t.Fatal(err)
		}
		if st.stores != 1 {
			t.Fatalf("stored %d times, want 1", st.stores)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		if _, err := LoadOrGenerateKey(ctx, nil, "key", ""); err == nil {
			t.Fatal("nil storage accepted")
		}
		if _, err := LoadOrGenerateKey(ctx, newMemStorage(), "", ""); err == nil {
			t.Fatal("empty name accepted")
		}
		if _, err := LoadOrGenerateKey(ctx, newMemStorage(), "key", "HS256"); err == nil {
			t.Fatal("unknown algorithm accepted")
		}
	})
}
