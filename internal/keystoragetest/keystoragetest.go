// Package keystoragetest is an in-memory issuer.KeyStorage for the tests of
// packages that keep keys in Caddy's storage: a Load of an absent name
// returns issuer.ErrKeyNotFound, and Lock excludes other holders of a name
// as a storage shared between processes does.
package keystoragetest

import (
	"context"
	"sync"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// Storage is the in-memory KeyStorage. The zero value is ready to use.
type Storage struct {
	mu    sync.Mutex
	data  map[string][]byte
	locks map[string]*sync.Mutex
}

var _ issuer.KeyStorage = (*Storage)(nil)

// Load implements issuer.KeyStorage.
func (s *Storage) Load(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[name]
	if !ok {
		return nil, issuer.ErrKeyNotFound
	}
	return append([]byte(nil), v...), nil
}

// Store implements issuer.KeyStorage.
func (s *Storage) Store(_ context.Context, name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		s.data = map[string][]byte{}
	}
	s.data[name] = append([]byte(nil), value...)
	return nil
}

func (s *Storage) lock(name string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks == nil {
		s.locks = map[string]*sync.Mutex{}
	}
	if s.locks[name] == nil {
		s.locks[name] = new(sync.Mutex)
	}
	return s.locks[name]
}

// Lock implements issuer.KeyStorage.
func (s *Storage) Lock(_ context.Context, name string) error {
	s.lock(name).Lock()
	return nil
}

// Unlock implements issuer.KeyStorage.
func (s *Storage) Unlock(_ context.Context, name string) error {
	s.lock(name).Unlock()
	return nil
}
