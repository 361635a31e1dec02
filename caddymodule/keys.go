package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
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
	if h.SigningKey != nil {
		key, err := h.SigningKey.read(alg)
		if err != nil {
			return nil, fmt.Errorf("convex_auth: %w", err)
		}
		return key, nil
	}
	// A keyring, so that rotation (key_rotation, caddy convex-auth
	// rotate-key) can publish the next key before it signs.
	kr, err := issuer.LoadOrCreateKeyring(ctx, certmagicKeyStorage{ctx.Storage()}, keyringName(h.Issuer, alg), alg, time.Now())
	if err != nil {
		return nil, fmt.Errorf("convex_auth: generated signing key in Caddy's storage: %w", err)
	}
	h.keyring = kr
	return kr.Current, nil
}

func (s *SigningKeySource) source() issuer.KeySource {
	return issuer.KeySource{From: s.From, Path: s.Path, Env: s.Env}
}

// read reads the key as the gateway and its commands do.
func (s *SigningKeySource) read(alg issuer.Algorithm) (*issuer.Key, error) {
	key, err := issuer.ReadKey(s.source(), alg)
	if err != nil {
		return nil, fmt.Errorf("signing_key %w", err)
	}
	return key, nil
}

func (s *SigningKeySource) describe() string { return s.source().String() }

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
