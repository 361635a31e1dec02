package secondfactor

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/seal"
	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// The factor key seals TOTP secrets at rest with XChaCha20-Poly1305
// (internal/seal), bound to the realm and the user, so a sealed secret
// copied onto another user does not open. It is the gateway's longest
// lived secret but the signing key: a secret sealed today is read at every
// sign-in for years. So it is not the flow cookies' key ring, which
// rotates daily and forgets its keys.
//
// Rotation: the current key seals, every key of the ring opens, and a
// secret opened with an older key is sealed again with the current one
// (Open reports it stale; the caller writes it back). Once every secret
// has been read (or re-encrypted by the operator API), the old keys can
// go.

// KeySize is a factor key's length: 32 random bytes.
const KeySize = 32

const secretPurpose = "convex_auth totp secret v1"

// SecretKeys seal and open TOTP secrets for one realm.
type SecretKeys struct {
	ring  *seal.Keyring
	realm string
}

// NewSecretKeys is the key ring of keys (current first) for realm.
func NewSecretKeys(realm string, keys ...[]byte) (*SecretKeys, error) {
	if len(keys) == 0 {
		return nil, errors.New("secondfactor: no factor key")
	}
	for _, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("secondfactor: a factor key is %d bytes, not %d", KeySize, len(k))
		}
	}
	ring, err := seal.New(keys...)
	if err != nil {
		return nil, err
	}
	return &SecretKeys{ring: ring, realm: realm}, nil
}

func (k *SecretKeys) aad(userID string) []byte {
	return []byte(secretPurpose + "\x00" + k.realm + "\x00" + userID)
}

// Seal seals userID's TOTP secret under the current key.
func (k *SecretKeys) Seal(userID, secret string) string {
	return k.ring.Seal([]byte(secret), k.aad(userID))
}

// ErrSecretSealed means a stored secret does not open with any factor key
// the gateway has: the key it was sealed under is gone (or the record was
// tampered with).
var ErrSecretSealed = errors.New("secondfactor: the stored TOTP secret does not open with any configured factor key: restore the key it was sealed under (see docs/operations.md)")

// Open opens userID's sealed secret; stale reports that it was sealed
// under an older key and is due for sealing again.
func (k *SecretKeys) Open(ctx context.Context, userID, sealed string) (secret string, stale bool, err error) {
	plain, err := k.ring.Open(ctx, sealed, k.aad(userID))
	if err != nil {
		return "", false, ErrSecretSealed
	}
	return string(plain), !k.ring.SealedWithCurrent(sealed), nil
}

// KeySource names where a configured factor key comes from: a file or an
// environment variable holding 32 random bytes in base64 (`openssl rand
// -base64 32`).
type KeySource struct {
	// From is "file" or "env".
	From string `json:"from,omitempty"`
	// Path is the file, for From "file".
	Path string `json:"path,omitempty"`
	// Env is the environment variable, for From "env".
	Env string `json:"env,omitempty"`
}

func (s KeySource) String() string {
	if s.From == "env" {
		return "env " + s.Env
	}
	return "file " + s.Path
}

// Check checks the source's shape without reading it.
func (s KeySource) Check() error {
	switch {
	case s.From == "file" && s.Path != "":
	case s.From == "env" && s.Env != "":
	default:
		return errors.New("must be `file <path>` or `env <VARIABLE>`")
	}
	return nil
}

// Read reads the key. Errors start with the source, for the caller to
// prefix with its option's name.
func (s KeySource) Read() ([]byte, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	var text string
	switch s.From {
	case "file":
		b, err := os.ReadFile(s.Path)
		if err != nil {
			return nil, fmt.Errorf("%s cannot be read (a relative path is read from the current directory): %w", s, err)
		}
		text = string(b)
	case "env":
		v, ok := os.LookupEnv(s.Env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%s is not set: export it with 32 random bytes in base64 (openssl rand -base64 32)", s)
		}
		text = v
	}
	key, err := ParseKey(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return key, nil
}

// ParseKey reads a factor key: 32 bytes in base64, standard or URL
// alphabet, padded or not.
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimRight(strings.TrimSpace(text), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, errors.New("is not 32 bytes in base64: make one with openssl rand -base64 32")
}

// storedKeys is the generated ring's form in Caddy's storage. Unlike the
// flow cookies' ring it keeps every key until RetireStoredKeys.
type storedKeys struct {
	Keys []storedKey `json:"keys"` // current first
}

type storedKey struct {
	Secret  []byte    `json:"secret"`
	Created time.Time `json:"created"`
}

// LoadOrCreateStoredKeys loads the generated factor keys stored under
// name (current first), creating the first one on first use, under the
// storage's lock so that instances starting together make one.
func LoadOrCreateStoredKeys(ctx context.Context, st issuer.KeyStorage, name string, now time.Time) ([][]byte, error) {
	return updateStoredKeys(ctx, st, name, func(set *storedKeys) bool {
		if len(set.Keys) > 0 {
			return false
		}
		set.Keys = []storedKey{{Secret: newKey(), Created: now.UTC()}}
		return true
	})
}

// RotateStoredKeys puts a new current key in front of the stored ones and
// returns the ring. Running gateways take it at their next start or
// config reload; until then they seal with the key before, which stays in
// the ring.
func RotateStoredKeys(ctx context.Context, st issuer.KeyStorage, name string, now time.Time) ([][]byte, error) {
	return updateStoredKeys(ctx, st, name, func(set *storedKeys) bool {
		set.Keys = append([]storedKey{{Secret: newKey(), Created: now.UTC()}}, set.Keys...)
		return true
	})
}

// RetireStoredKeys drops every stored key but the current one: secrets
// still sealed under them no longer open.
func RetireStoredKeys(ctx context.Context, st issuer.KeyStorage, name string) ([][]byte, error) {
	return updateStoredKeys(ctx, st, name, func(set *storedKeys) bool {
		if len(set.Keys) <= 1 {
			return false
		}
		set.Keys = set.Keys[:1]
		return true
	})
}

func updateStoredKeys(ctx context.Context, st issuer.KeyStorage, name string, change func(*storedKeys) bool) ([][]byte, error) {
	if err := st.Lock(ctx, name); err != nil {
		return nil, fmt.Errorf("secondfactor: locking %s in storage: %w", name, err)
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), name) }()
	var set storedKeys
	raw, err := st.Load(ctx, name)
	switch {
	case errors.Is(err, issuer.ErrKeyNotFound):
	case err != nil:
		return nil, fmt.Errorf("secondfactor: reading %s from storage: %w", name, err)
	default:
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, fmt.Errorf("secondfactor: %s in storage is not a factor key ring (%w): restore it from a backup; a new one would leave every TOTP secret unreadable", name, err)
		}
	}
	if change(&set) {
		raw, _ := json.Marshal(set)
		if err := st.Store(ctx, name, raw); err != nil {
			return nil, fmt.Errorf("secondfactor: storing %s: %w", name, err)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("secondfactor: %s in storage holds no key", name)
	}
	out := make([][]byte, len(set.Keys))
	for i, k := range set.Keys {
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("secondfactor: %s in storage holds a key of %d bytes", name, len(k.Secret))
		}
		out[i] = k.Secret
	}
	return out, nil
}

func newKey() []byte {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b)
	return b
}
