package issuer

import (
	"context"
	"errors"
	"fmt"
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

// LoadOrGenerateKey returns the key stored under name, or generates, stores
// and returns one, under the storage lock so concurrent callers (other
// processes sharing the storage) get one key. A stored key whose algorithm
// differs from alg (when alg != "") is an error naming both. A newly generated
// key uses alg, or RS256 when alg is "".
func LoadOrGenerateKey(ctx context.Context, st KeyStorage, name string, alg Algorithm) (*Key, error) {
	if st == nil {
		return nil, errors.New("no key storage given: pass the storage that keeps generated keys")
	}
	if name == "" {
		return nil, errors.New("no storage name given for the signing key")
	}
	if alg != "" {
		if _, err := ParseAlgorithm(string(alg)); err != nil {
			return nil, err
		}
	}

	// The common case, a key already stored, needs no lock.
	if key, err := loadStoredKey(ctx, st, name, alg); !isKeyNotFound(err) {
		return key, err
	}

	if err := st.Lock(ctx, name); err != nil {
		return nil, fmt.Errorf("lock signing key %q in storage: %w", name, err)
	}
	defer func() {
		// Unlock even when ctx was cancelled, or other instances wait for the lock to expire.
		_ = st.Unlock(context.WithoutCancel(ctx), name)
	}()

	// Another instance may have stored a key while we waited for the lock.
	key, err := loadStoredKey(ctx, st, name, alg)
	if !isKeyNotFound(err) {
		return key, err
	}

	key, err = GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	pemBytes, err := key.MarshalPKCS8PEM()
	if err != nil {
		return nil, err
	}
	if err := st.Store(ctx, name, pemBytes); err != nil {
		return nil, fmt.Errorf("store generated signing key %q: %w", name, err)
	}
	return key, nil
}

// loadStoredKey returns the key under name, the storage's not-found error
// when there is none, or an error saying why the stored key is unusable.
func loadStoredKey(ctx context.Context, st KeyStorage, name string, alg Algorithm) (*Key, error) {
	data, err := st.Load(ctx, name)
	if isKeyNotFound(err) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("load signing key %q from storage: %w", name, err)
	}
	key, err := ParseKey(data, "")
	if err != nil {
		return nil, fmt.Errorf("signing key %q in storage is not usable (remove it to generate a new one): %w", name, err)
	}
	if alg != "" && key.Algorithm() != alg {
		return nil, fmt.Errorf("signing key %q in storage is %s but the configured algorithm is %s: configure %s, or remove the stored key to generate a new %s key",
			name, key.Algorithm(), alg, key.Algorithm(), alg)
	}
	return key, nil
}
