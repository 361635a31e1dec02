package issuer

import (
	"context"
	"errors"
	"io/fs"
)

// ErrKeyNotFound is what KeyStorage.Load returns (possibly wrapped) when
// nothing is stored under the name. An error wrapping fs.ErrNotExist, which
// certmagic storages return, is taken to mean the same.
var ErrKeyNotFound = errors.New("issuer: key not found in storage")

func isKeyNotFound(err error) bool {
	return errors.Is(err, ErrKeyNotFound) || errors.Is(err, fs.ErrNotExist)
}

// KeyStorage persists generated keys so that a restart, and every instance
// sharing the storage, signs with the same key. caddymodule implements it
// with Caddy's certmagic storage.
type KeyStorage interface {
	// Load returns the value stored under name, or ErrKeyNotFound when absent.
	Load(ctx context.Context, name string) ([]byte, error)
	// Store writes value under name, replacing any previous value.
	Store(ctx context.Context, name string, value []byte) error
	// Lock takes an exclusive lock on name, across every process sharing the
	// storage, waiting for it if another holder has it.
	Lock(ctx context.Context, name string) error
	// Unlock releases a lock taken by Lock.
	Unlock(ctx context.Context, name string) error
}
