package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/ratelog"
	"github.com/convex-auth/caddy-convex-auth/issuer"
)

const (
	// keyPollIntervalEnv shortens the interval for the rotation tests.
	// Not a user option: a shorter interval only adds storage traffic.
	keyPollIntervalEnv = "CONVEX_AUTH_TEST_KEY_POLL_INTERVAL"
	// keyPollErrorLogInterval is how often a failing poll is logged.
	keyPollErrorLogInterval = time.Minute
)

// keyPollInterval returns the poll interval, from keyPollIntervalEnv when set.
func keyPollInterval() time.Duration {
	if v := os.Getenv(keyPollIntervalEnv); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return issuer.DefaultPollInterval
}

// checkKeyRotation checks key_rotation and key_publish_lead.
func (h *Handler) checkKeyRotation() error {
	if h.KeyRotation == 0 && h.KeyPublishLead == 0 {
		return nil
	}
	if h.SigningKey != nil {
		opt := "key_rotation"
		if h.KeyRotation == 0 {
			opt = "key_publish_lead"
		}
		return fmt.Errorf("convex_auth: %s applies to the generated key only, but signing_key %s is set: rotate your own key by publishing the new one first, or remove signing_key to let the gateway generate and rotate keys", opt, h.SigningKey.describe())
	}
	_, err := h.rotationPolicy().WithDefaults()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, issuer.ErrPublishLeadTooShort):
		return fmt.Errorf("convex_auth: key_publish_lead %s is under the %s minimum: verifiers such as Convex cache the JWKS for up to %s (max-age plus stale-while-revalidate) and must see a key before it signs: %w", time.Duration(h.KeyPublishLead), issuer.MinPublishLead, issuer.MinPublishLead, err)
	case errors.Is(err, issuer.ErrRotationUnderLead):
		return fmt.Errorf("convex_auth: key_rotation %s is shorter than key_publish_lead %s: each key is published for the lead before it signs, so use a key_rotation of at least the lead (e.g. 720h): %w", time.Duration(h.KeyRotation), h.publishLead(), err)
	default:
		return fmt.Errorf("convex_auth: key_rotation: %w", err)
	}
}

func (h *Handler) rotationPolicy() issuer.RotationPolicy {
	return issuer.RotationPolicy{
		RotateEvery: time.Duration(h.KeyRotation),
		PublishLead: time.Duration(h.KeyPublishLead),
		TokenTTL:    time.Duration(h.TokenTTL),
	}
}

// publishLead is key_publish_lead with its default.
func (h *Handler) publishLead() time.Duration {
	if h.KeyPublishLead == 0 {
		return issuer.DefaultPublishLead
	}
	return time.Duration(h.KeyPublishLead)
}

// provisionKeyring makes the issuer publish the whole keyring loaded with
// the generated key, and joins the background poller that keeps it current.
// Without a generated key (signing_key file|env) there is nothing to do.
func (h *Handler) provisionKeyring(ctx caddy.Context) error {
	kr := h.keyring
	h.keyring = nil // the poller owns what follows
	if kr == nil {
		return nil
	}
	if err := h.issuer.SetKeys(kr.Current, kr.Next, kr.Previous); err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	policy, err := h.rotationPolicy().WithDefaults()
	if err != nil {
		return err
	}
	alg := issuer.Algorithm(h.Algorithm)
	storage := ctx.Storage()
	name := keyringName(h.Issuer, alg)
	raw, err := json.Marshal(struct {
		Storage, Name string
		Policy        issuer.RotationPolicy
	}{storageID(storage), name, policy})
	if err != nil {
		return err
	}
	key := string(raw)
	val, _, err := keyPollers.LoadOrNew(key, func() (caddy.Destructor, error) {
		return startKeyPoller(name, alg, policy, h.logger)
	})
	if err != nil {
		return err
	}
	poller := val.(*keyRotator)
	poller.Add(h.issuer, certmagicKeyStorage{storage}, kr)
	h.rotator, h.rotatorKey = poller, key
	return nil
}

// releaseKeyRotator leaves the poller; the last one out stops it.
func (h *Handler) releaseKeyRotator() error {
	if h.rotator == nil {
		return nil
	}
	h.rotator.Remove(h.issuer)
	_, err := keyPollers.Delete(h.rotatorKey)
	h.rotator, h.rotatorKey = nil, ""
	return err
}

// storageID names a storage for the poller pool: the file system storage
// says its path; others are told apart by type and instance.
func storageID(s certmagic.Storage) string {
	if str, ok := s.(fmt.Stringer); ok {
		return fmt.Sprintf("%T %s", s, str)
	}
	return fmt.Sprintf("%T %p", s, s)
}

// keyPollers holds one poller per storage, keyring and policy, shared by
// the handlers using it and across config reloads.
var keyPollers = caddy.NewUsagePool()

// keyRotator is an issuer.KeyringPoller that the usage pool can stop.
type keyRotator struct{ *issuer.KeyringPoller }

// Destruct stops the poller; the usage pool calls it when the last handler leaves.
func (p *keyRotator) Destruct() error {
	p.Stop()
	return nil
}

func startKeyPoller(name string, alg issuer.Algorithm, policy issuer.RotationPolicy, logger *zap.Logger) (*keyRotator, error) {
	errLog := ratelog.New(logger, keyPollErrorLogInterval)
	p, err := issuer.NewKeyringPoller(issuer.PollerConfig{
		Name: name, Algorithm: alg, Policy: policy,
		Interval: keyPollInterval(),
		OnAdvance: func(kr *issuer.Keyring, policy issuer.RotationPolicy) {
			fields := []zap.Field{zap.String("keyring", name), zap.String("signing_kid", kr.Current.ID())}
			if kr.Next != nil {
				fields = append(fields, zap.String("next_kid", kr.Next.ID()), zap.Time("next_signs_after", kr.NextPublishedAt.Add(policy.PublishLead)))
			}
			logger.Info("signing keyring advanced", append(fields, zap.Int("retired_keys_published", len(kr.Previous)))...)
		},
		OnError: func(err error) {
			errLog.Warn("the signing keyring in Caddy's storage cannot be read, advanced or applied: this instance keeps publishing and signing with the keys it has; check the storage", err)
		},
	})
	if err != nil {
		return nil, err
	}
	p.Start()
	return &keyRotator{p}, nil
}
