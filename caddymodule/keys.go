package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// loadSigningKey reads the configured key, or loads the one kept in Caddy's
// storage (generating it on first start).
func (h *Handler) loadSigningKey(ctx caddy.Context) (*issuer.Key, error) {
	alg := issuer.Algorithm(h.Algorithm)
	if src := h.SigningKey; src != nil {
		var pem []byte
		switch src.From {
		case "file":
			b, err := os.ReadFile(src.Path)
			if err != nil {
				return nil, fmt.Errorf("convex_auth: signing_key file %s cannot be read: %v", src.Path, errors.Unwrap(err))
			}
			pem = b
		case "env":
			v, ok := os.LookupEnv(src.Env)
			if !ok || strings.TrimSpace(v) == "" {
				return nil, fmt.Errorf("convex_auth: signing_key env %s is not set: export it with a PKCS#8 PEM private key (caddy convex-auth keygen prints one)", src.Env)
			}
			pem = []byte(v)
		}
		key, err := issuer.ParseKey(pem, alg)
		if err != nil {
			return nil, fmt.Errorf("convex_auth: signing_key %s: %v", src.describe(), err)
		}
		return key, nil
	}
	// A keyring, so that rotation (key_rotation, caddy convex-auth
	// rotate-key) can publish the next key before it signs. A key stored by
	// earlier versions under generatedKeyName becomes its first key.
	kr, err := issuer.LoadOrCreateKeyring(ctx, certmagicKeyStorage{ctx.Storage()}, keyringName(h.Issuer, alg), generatedKeyName(h.Issuer, alg), alg, time.Now())
	if err != nil {
		return nil, fmt.Errorf("convex_auth: generated signing key in Caddy's storage: %v", err)
	}
	h.keyring = kr
	return kr.Current, nil
}

func (s *SigningKeySource) describe() string {
	if s.From == "env" {
		return "env " + s.Env
	}
	return "file " + s.Path
}

// generatedKeyName is where versions before the keyring kept the generated
// signing key: one per issuer and algorithm, so sites do not share keys by
// accident. A keyring adopts the key found there.
func generatedKeyName(iss string, alg issuer.Algorithm) string {
	return generatedKeysDir(iss) + "/signing_key_" + string(defaultedAlgorithm(alg)) + ".pem"
}

// keyringName is the storage key of the generated keys' keyring (current,
// next and retired keys): one per issuer and algorithm.
func keyringName(iss string, alg issuer.Algorithm) string {
	return generatedKeysDir(iss) + "/keyring_" + string(defaultedAlgorithm(alg)) + ".json"
}

func defaultedAlgorithm(alg issuer.Algorithm) issuer.Algorithm {
	if alg == "" {
		return issuer.DefaultAlgorithm
	}
	return alg
}

func generatedKeysDir(iss string) string {
	site := "default"
	if u, err := url.Parse(iss); err == nil && u.Host != "" {
		site = certmagic.StorageKeys.Safe(u.Host + strings.ReplaceAll(strings.TrimSuffix(u.Path, "/"), "/", "_"))
	}
	return "convex_auth/" + site
}

// certmagicKeyStorage keeps generated keys in Caddy's storage, which every
// instance sharing that storage sees, with its locks.
type certmagicKeyStorage struct {
	s certmagic.Storage
}

func (c certmagicKeyStorage) Load(ctx context.Context, name string) ([]byte, error) {
	b, err := c.s.Load(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, issuer.ErrKeyNotFound
	}
	return b, err
}

func (c certmagicKeyStorage) Store(ctx context.Context, name string, value []byte) error {
	return c.s.Store(ctx, name, value)
}

func (c certmagicKeyStorage) Lock(ctx context.Context, name string) error {
	return c.s.Lock(ctx, name)
}

func (c certmagicKeyStorage) Unlock(ctx context.Context, name string) error {
	return c.s.Unlock(ctx, name)
}

var _ issuer.KeyStorage = certmagicKeyStorage{}
