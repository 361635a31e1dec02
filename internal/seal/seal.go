// Package seal keeps short-lived state in the browser instead of the
// store: it seals a value with XChaCha20-Poly1305 (golang.org/x/crypto)
// under a key ring shared by every instance through a KeyStorage, with
// rotation (the current key seals; the previous one still opens).
package seal

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// DefaultRotateAfter is how old the current key may be before the next
// start rotates it. Sealed values live minutes, so any day-scale period
// keeps every live value openable with the previous key.
const DefaultRotateAfter = 24 * time.Hour

// reloadEvery bounds how often an unknown key ID rereads the storage.
const reloadEvery = 10 * time.Second

// rotateTimeout bounds a running ring's rotation (storage lock and write).
const rotateTimeout = 30 * time.Second

// keyIDBytes prefix every sealed value: which key sealed it.
const keyIDBytes = 4

// ErrOpen means a sealed value is forged, damaged, or sealed under a key
// no longer kept.
var ErrOpen = errors.New("seal: the value does not open: forged, damaged or sealed under a retired key")

type key struct {
	id   [keyIDBytes]byte
	aead cipher.AEAD
}

// Keyring seals with its current key and opens with any key it holds.
type Keyring struct {
	mu       sync.RWMutex
	keys     []key // current first
	load     func(ctx context.Context) ([][]byte, error)
	lastLoad time.Time
	// A stored ring rotates itself: current is when its current key was
	// made; rotate runs (once at a time) when it is older than rotateAfter.
	current     time.Time
	rotateAfter time.Duration
	rotate      func()
	rotating    atomic.Bool
}

// New is a key ring of fixed secrets (32 bytes each), the current first.
func New(secrets ...[]byte) (*Keyring, error) {
	keys, err := makeKeys(secrets)
	if err != nil {
		return nil, err
	}
	return &Keyring{keys: keys}, nil
}

// Ephemeral is a key ring of one random key that lives in this process
// only: for a single instance and tests.
func Ephemeral() *Keyring {
	k, err := New(newSecret())
	if err != nil {
		panic(err) // a fresh 32-byte secret is always a key
	}
	return k
}

func newSecret() []byte {
	b := make([]byte, chacha20poly1305.KeySize)
	_, _ = rand.Read(b) // never fails on supported platforms
	return b
}

func makeKeys(secrets [][]byte) ([]key, error) {
	if len(secrets) == 0 {
		return nil, errors.New("seal: a key ring needs at least one key")
	}
	keys := make([]key, 0, len(secrets))
	for _, s := range secrets {
		aead, err := chacha20poly1305.NewX(s)
		if err != nil {
			return nil, fmt.Errorf("seal: a key must be %d bytes: %w", chacha20poly1305.KeySize, err)
		}
		sum := sha256.Sum256(s)
		var k key
		copy(k.id[:], sum[:keyIDBytes])
		k.aead = aead
		keys = append(keys, k)
	}
	return keys, nil
}

// Seal encrypts and authenticates plain, bound to aad (which Open must
// be given again), as base64url text.
func (k *Keyring) Seal(plain, aad []byte) string {
	k.mu.RLock()
	cur, due := k.keys[0], k.rotate != nil && time.Since(k.current) >= k.rotateAfter
	k.mu.RUnlock()
	if due && k.rotating.CompareAndSwap(false, true) {
		go func() {
			defer k.rotating.Store(false)
			k.rotate()
		}()
	}
	out := make([]byte, keyIDBytes+chacha20poly1305.NonceSizeX, keyIDBytes+chacha20poly1305.NonceSizeX+len(plain)+cur.aead.Overhead())
	copy(out, cur.id[:])
	_, _ = rand.Read(out[keyIDBytes:])
	out = cur.aead.Seal(out, out[keyIDBytes:], plain, aad)
	return base64.RawURLEncoding.EncodeToString(out)
}

// Open checks and decrypts a value from Seal; ErrOpen if it does not open.
// A key ID it does not hold rereads the storage (at most every 10s), so an
// instance picks up a key another instance rotated in.
func (k *Keyring) Open(ctx context.Context, sealed string, aad []byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < keyIDBytes+chacha20poly1305.NonceSizeX {
		return nil, ErrOpen
	}
	kk, ok := k.find(raw[:keyIDBytes])
	if !ok && k.reload(ctx) {
		kk, ok = k.find(raw[:keyIDBytes])
	}
	if !ok {
		return nil, ErrOpen
	}
	nonce := raw[keyIDBytes : keyIDBytes+chacha20poly1305.NonceSizeX]
	plain, err := kk.aead.Open(nil, nonce, raw[keyIDBytes+chacha20poly1305.NonceSizeX:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

func (k *Keyring) find(id []byte) (key, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, kk := range k.keys {
		if string(kk.id[:]) == string(id) {
			return kk, true
		}
	}
	return key{}, false
}

// reload rereads the stored keys and reports whether it did.
func (k *Keyring) reload(ctx context.Context) bool {
	if k.load == nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.lastLoad) < reloadEvery {
		return false
	}
	k.lastLoad = time.Now()
	secrets, err := k.load(ctx)
	if err != nil {
		return false
	}
	keys, err := makeKeys(secrets)
	if err != nil {
		return false
	}
	k.keys = keys
	return true
}

// stored is the key ring's form in storage.
type stored struct {
	Keys []storedKey `json:"keys"` // current first, then the previous one
}

type storedKey struct {
	Secret  []byte    `json:"secret"`
	Created time.Time `json:"created"`
}

// LoadOrCreate loads the key ring stored under name, creating it on first
// use and rotating it when its current key is older than rotateAfter: the
// new key becomes current and the old current is kept to open values it
// sealed. It holds the storage's lock on name while it does, so instances
// starting together agree on one ring. A running ring rotates the same way
// when its current key grows older than rotateAfter (checked as it seals).
func LoadOrCreate(ctx context.Context, st issuer.KeyStorage, name string, rotateAfter time.Duration, now time.Time) (*Keyring, error) {
	if rotateAfter <= 0 {
		rotateAfter = DefaultRotateAfter
	}
	set, err := lockedRotate(ctx, st, name, rotateAfter, now)
	if err != nil {
		return nil, err
	}
	keys, err := makeKeys(secretsOf(set))
	if err != nil {
		return nil, fmt.Errorf("seal: %s in storage: %w", name, err)
	}
	k := &Keyring{keys: keys, current: set.Keys[0].Created, load: func(ctx context.Context) ([][]byte, error) {
		set, err := loadSet(ctx, st, name)
		if err != nil || len(set.Keys) == 0 {
			return nil, errors.Join(err, errors.New("seal: no keys stored"))
		}
		return secretsOf(set), nil
	}}
	k.rotate = func() {
		ctx, cancel := context.WithTimeout(context.Background(), rotateTimeout)
		defer cancel()
		set, err := lockedRotate(ctx, st, name, rotateAfter, time.Now())
		if err != nil {
			return // the next seal tries again; the old key still works
		}
		keys, err := makeKeys(secretsOf(set))
		if err != nil {
			return
		}
		k.mu.Lock()
		k.keys, k.current = keys, set.Keys[0].Created
		k.mu.Unlock()
	}
	k.rotateAfter = rotateAfter
	return k, nil
}

// lockedRotate loads the ring under the storage lock, rotating it when its
// current key is older than rotateAfter.
func lockedRotate(ctx context.Context, st issuer.KeyStorage, name string, rotateAfter time.Duration, now time.Time) (stored, error) {
	if err := st.Lock(ctx, name); err != nil {
		return stored{}, fmt.Errorf("seal: locking %s in storage: %w", name, err)
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), name) }()
	set, err := loadSet(ctx, st, name)
	if err != nil {
		return set, err
	}
	if len(set.Keys) == 0 || now.Sub(set.Keys[0].Created) >= rotateAfter {
		next := storedKey{Secret: newSecret(), Created: now.UTC()}
		set.Keys = append([]storedKey{next}, set.Keys...)
		if len(set.Keys) > 2 {
			set.Keys = set.Keys[:2]
		}
		raw, _ := json.Marshal(set)
		if err := st.Store(ctx, name, raw); err != nil {
			return set, fmt.Errorf("seal: storing %s: %w", name, err)
		}
	}
	return set, nil
}

func loadSet(ctx context.Context, st issuer.KeyStorage, name string) (stored, error) {
	var set stored
	raw, err := st.Load(ctx, name)
	if errors.Is(err, issuer.ErrKeyNotFound) {
		return set, nil
	}
	if err != nil {
		return set, fmt.Errorf("seal: reading %s from storage: %w", name, err)
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return set, fmt.Errorf("seal: %s in storage is not a key ring: %w; delete it to start a new one", name, err)
	}
	return set, nil
}

func secretsOf(set stored) [][]byte {
	out := make([][]byte, len(set.Keys))
	for i, k := range set.Keys {
		out[i] = k.Secret
	}
	return out
}

// SealedWithCurrent reports whether sealed was sealed under the ring's
// current key: a value sealed under an older one is due for sealing again
// (a second factor's secret, re-encrypted when read).
func (k *Keyring) SealedWithCurrent(sealed string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < keyIDBytes {
		return false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return string(k.keys[0].id[:]) == string(raw[:keyIDBytes])
}
