package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/ratelog"
	"github.com/convex-auth/caddy-convex-auth/issuer"
)

const (
	// defaultKeyPollInterval is how often each instance reads the keyring
	// (and, when something is due, advances it). Other instances see a
	// rotation within one interval; issuer.DefaultPublishLead leaves room
	// for it on top of what verifiers cache.
	defaultKeyPollInterval = 5 * time.Second
	// keyPollIntervalEnv shortens the interval for the rotation tests.
	// Not a user option: a shorter interval only adds storage traffic.
	keyPollIntervalEnv = "CONVEX_AUTH_TEST_KEY_POLL_INTERVAL"
	// keyPollTimeout bounds one poll, including waiting for the storage lock.
	keyPollTimeout = time.Minute
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
	return defaultKeyPollInterval
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
	if _, err := h.rotationPolicy().WithDefaults(); err != nil {
		msg := err.Error()
		switch {
		case h.KeyPublishLead != 0 && time.Duration(h.KeyPublishLead) < issuer.MinPublishLead:
			return fmt.Errorf("convex_auth: key_publish_lead %s is under the %s minimum: verifiers such as Convex cache the JWKS for up to %s (max-age plus stale-while-revalidate) and must see a key before it signs", time.Duration(h.KeyPublishLead), issuer.MinPublishLead, issuer.MinPublishLead)
		case strings.Contains(msg, "shorter than the publish lead"):
			return fmt.Errorf("convex_auth: key_rotation %s is shorter than key_publish_lead %s: each key is published for the lead before it signs, so use a key_rotation of at least the lead (e.g. 720h)", time.Duration(h.KeyRotation), h.rotationPolicyLead())
		default:
			return fmt.Errorf("convex_auth: key_rotation: %v", err)
		}
	}
	return nil
}

func (h *Handler) rotationPolicy() issuer.RotationPolicy {
	return issuer.RotationPolicy{
		RotateEvery: time.Duration(h.KeyRotation),
		PublishLead: time.Duration(h.KeyPublishLead),
		TokenTTL:    time.Duration(h.TokenTTL),
	}
}

func (h *Handler) rotationPolicyLead() time.Duration {
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
		return fmt.Errorf("convex_auth: %v", err)
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
	val, _, err := keyRotators.LoadOrNew(key, func() (caddy.Destructor, error) {
		return startKeyRotator(name, alg, policy, h.logger), nil
	})
	if err != nil {
		return err
	}
	rot := val.(*keyRotator)
	rot.add(h.issuer, certmagicKeyStorage{storage}, kr)
	h.rotator, h.rotatorKey = rot, key
	return nil
}

// releaseKeyRotator leaves the poller; the last one out stops it.
func (h *Handler) releaseKeyRotator() error {
	if h.rotator == nil {
		return nil
	}
	h.rotator.remove(h.issuer)
	_, err := keyRotators.Delete(h.rotatorKey)
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

// keyRotators holds one poller per storage, keyring and policy, shared by
// the handlers using it and across config reloads.
var keyRotators = caddy.NewUsagePool()

// keyRotator polls one keyring: it advances it along the policy (only the
// instance holding the storage lock changes anything) and applies what is
// stored to every issuer signing with it, so all instances sharing the
// storage converge on one published key set.
type keyRotator struct {
	name   string
	alg    issuer.Algorithm
	policy issuer.RotationPolicy
	logger *zap.Logger
	errLog *ratelog.Log
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	storage issuer.KeyStorage                 // the newest handler's; a reload may change it
	issuers map[*issuer.Issuer]keyringVersion // what each issuer publishes now
}

// keyringVersion identifies a keyring's content: the kids and times.
type keyringVersion string

func versionOf(kr *issuer.Keyring) keyringVersion {
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%d", kr.Current.ID(), kr.CreatedAt.UnixNano())
	if kr.Next != nil {
		fmt.Fprintf(&b, " next %s@%d", kr.Next.ID(), kr.NextPublishedAt.UnixNano())
	}
	for _, p := range kr.Previous {
		fmt.Fprintf(&b, " prev %s@%d", p.Key.ID(), p.RetiredAt.UnixNano())
	}
	return keyringVersion(b.String())
}

func startKeyRotator(name string, alg issuer.Algorithm, policy issuer.RotationPolicy, logger *zap.Logger) *keyRotator {
	ctx, cancel := context.WithCancel(context.Background())
	r := &keyRotator{
		name: name, alg: alg, policy: policy,
		logger:  logger,
		errLog:  ratelog.New(logger, keyPollErrorLogInterval),
		cancel:  cancel,
		done:    make(chan struct{}),
		issuers: make(map[*issuer.Issuer]keyringVersion),
	}
	go r.run(ctx, keyPollInterval())
	return r
}

func (r *keyRotator) add(iss *issuer.Issuer, st issuer.KeyStorage, applied *issuer.Keyring) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.storage = st
	r.issuers[iss] = versionOf(applied)
}

func (r *keyRotator) remove(iss *issuer.Issuer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.issuers, iss)
}

// Destruct stops the poller; the usage pool calls it when the last handler leaves.
func (r *keyRotator) Destruct() error {
	r.cancel()
	<-r.done
	return nil
}

func (r *keyRotator) run(ctx context.Context, interval time.Duration) {
	defer close(r.done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.poll(ctx)
		}
	}
}

// poll advances the stored keyring if something is due and applies it.
func (r *keyRotator) poll(ctx context.Context) {
	r.mu.Lock()
	st := r.storage
	r.mu.Unlock()
	if st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, keyPollTimeout)
	defer cancel()
	kr, changed, err := issuer.AdvanceKeyring(ctx, st, r.name, r.alg, time.Now(), r.policy)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			r.errLog.Warn("the signing keyring in Caddy's storage cannot be read or advanced: this instance keeps publishing and signing with the keys it has; check the storage", err)
		}
		return
	}
	if changed {
		fields := []zap.Field{zap.String("keyring", r.name), zap.String("signing_kid", kr.Current.ID())}
		if kr.Next != nil {
			fields = append(fields, zap.String("next_kid", kr.Next.ID()), zap.Time("next_signs_after", kr.NextPublishedAt.Add(r.policy.PublishLead)))
		}
		r.logger.Info("signing keyring advanced", append(fields, zap.Int("retired_keys_published", len(kr.Previous)))...)
	}
	r.apply(kr)
}

// apply makes every issuer publish and sign with kr, unless it does already.
func (r *keyRotator) apply(kr *issuer.Keyring) {
	v := versionOf(kr)
	r.mu.Lock()
	defer r.mu.Unlock()
	for iss, applied := range r.issuers {
		if applied == v {
			continue
		}
		if err := iss.SetKeys(kr.Current, kr.Next, kr.Previous); err != nil {
			r.errLog.Warn("applying the signing keyring failed", err)
			continue
		}
		r.issuers[iss] = v
	}
}
