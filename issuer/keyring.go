package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Rotation timing defaults and limits.
const (
	// DefaultPublishLead is how long a next key is published before it signs.
	DefaultPublishLead = time.Minute
	// MinPublishLead covers a verifier that caches the JWKS as
	// DocumentCacheControl allows: max-age 15 s plus stale-while-revalidate
	// 15 s. Every instance sharing the keyring publishes the next key within
	// one poll of the first, which DefaultPublishLead leaves room for.
	MinPublishLead = 30 * time.Second
	// RetiredKeyGrace keeps a retired key published this long past its
	// retirement plus the token TTL: instances sharing a keyring learn of a
	// promotion up to one poll late and keep signing with the old key until
	// then, and clocks of different machines differ a little.
	RetiredKeyGrace = time.Minute
)

// keyringVersion is written into every keyring document.
const keyringVersion = 1

// Keyring is the persisted set of generated keys that every instance sharing
// a KeyStorage signs with and publishes.
type Keyring struct {
	// Current signs tokens. CreatedAt is when it started signing (or was
	// generated or adopted).
	Current   *Key
	CreatedAt time.Time
	// Next is published but does not sign yet; nil when no rotation is under
	// way. NextPublishedAt is when it was first published.
	Next            *Key
	NextPublishedAt time.Time
	// Previous are former signing keys, newest first, published until their
	// last token has expired.
	Previous []RetiredKey
}

// RetiredKey is a former signing key and when it stopped signing.
type RetiredKey struct {
	Key       *Key
	RetiredAt time.Time
}

// RotationPolicy says when AdvanceKeyring changes a keyring.
type RotationPolicy struct {
	// RotateEvery is how long each key signs. 0 rotates only on request
	// (RequestRotation).
	RotateEvery time.Duration
	// PublishLead is how long a next key is published before it signs.
	// Default DefaultPublishLead; at least MinPublishLead.
	PublishLead time.Duration
	// TokenTTL is the lifetime of tokens signed with the keys: a retired key
	// is kept for TokenTTL plus RetiredKeyGrace. Default DefaultTokenTTL.
	TokenTTL time.Duration
}

// The limits WithDefaults checks, for errors.Is.
var (
	ErrNegativeRotation    = errors.New("rotation interval is negative")
	ErrPublishLeadTooShort = errors.New("publish lead is under the minimum")
	ErrRotationUnderLead   = errors.New("rotation interval is shorter than the publish lead")
)

// WithDefaults fills in zero fields and checks the limits; a broken limit
// is an error wrapping ErrNegativeRotation, ErrPublishLeadTooShort or
// ErrRotationUnderLead.
func (p RotationPolicy) WithDefaults() (RotationPolicy, error) {
	if p.PublishLead == 0 {
		p.PublishLead = DefaultPublishLead
	}
	if p.TokenTTL == 0 {
		p.TokenTTL = DefaultTokenTTL
	}
	switch {
	case p.RotateEvery < 0:
		return p, fmt.Errorf("%w: %s; use 0 (no scheduled rotation) or a positive duration", ErrNegativeRotation, p.RotateEvery)
	case p.PublishLead < MinPublishLead:
		return p, fmt.Errorf("%w: %s is under %s; verifiers cache the JWKS for up to %s and must see a key before it signs", ErrPublishLeadTooShort, p.PublishLead, MinPublishLead, MinPublishLead)
	case p.RotateEvery != 0 && p.RotateEvery < p.PublishLead:
		return p, fmt.Errorf("%w: %s is shorter than %s; a key must be published for the lead before it signs, so rotate at most once per lead", ErrRotationUnderLead, p.RotateEvery, p.PublishLead)
	}
	return p, nil
}

// keyringDocument is the stored JSON form of a Keyring.
type keyringDocument struct {
	Version  int               `json:"version"`
	Current  *keyringCurrent   `json:"current"`
	Next     *keyringNext      `json:"next"`
	Previous []keyringPrevious `json:"previous"`
}

type keyringCurrent struct {
	PEM       string    `json:"pem"`
	CreatedAt time.Time `json:"created_at"`
}

type keyringNext struct {
	PEM         string    `json:"pem"`
	PublishedAt time.Time `json:"published_at"`
}

type keyringPrevious struct {
	PEM       string    `json:"pem"`
	RetiredAt time.Time `json:"retired_at"`
}

// LoadOrCreateKeyring returns the keyring stored under name. When there is
// none it makes one with a newly generated alg key, under the storage lock so
// that instances starting at once end with one keyring. now stamps a new
// keyring.
func LoadOrCreateKeyring(ctx context.Context, st KeyStorage, name string, alg Algorithm, now time.Time) (*Keyring, error) {
	if err := checkKeyringArgs(st, name, alg); err != nil {
		return nil, err
	}
	if kr, err := loadKeyring(ctx, st, name, alg); !isKeyNotFound(err) {
		return kr, err
	}
	var kr *Keyring
	err := withStorageLock(ctx, st, name, func() error {
		var err error
		kr, err = loadKeyring(ctx, st, name, alg)
		if !isKeyNotFound(err) {
			return err
		}
		key, err := GenerateKey(alg)
		if err != nil {
			return err
		}
		kr = &Keyring{Current: key, CreatedAt: now}
		return storeKeyring(ctx, st, name, kr)
	})
	return kr, err
}

// LoadKeyring returns the keyring stored under name, or an error wrapping
// ErrKeyNotFound when there is none.
func LoadKeyring(ctx context.Context, st KeyStorage, name string, alg Algorithm) (*Keyring, error) {
	if err := checkKeyringArgs(st, name, alg); err != nil {
		return nil, err
	}
	return loadKeyring(ctx, st, name, alg)
}

// AdvanceKeyring moves the stored keyring along policy at now: it publishes
// a next key when the current one is due for rotation, makes the next key
// the signing key once it has been published for the publish lead, and drops
// retired keys whose last token has expired. Only changes take the storage
// lock, so many instances can call it often; concurrent callers make one
// change. It returns the keyring as stored and whether this call changed it.
func AdvanceKeyring(ctx context.Context, st KeyStorage, name string, alg Algorithm, now time.Time, policy RotationPolicy) (*Keyring, bool, error) {
	if err := checkKeyringArgs(st, name, alg); err != nil {
		return nil, false, err
	}
	policy, err := policy.WithDefaults()
	if err != nil {
		return nil, false, err
	}
	kr, err := loadKeyring(ctx, st, name, alg)
	if err != nil {
		return nil, false, err
	}
	if !kr.due(now, policy) {
		return kr, false, nil
	}
	changed := false
	err = withStorageLock(ctx, st, name, func() error {
		// Another instance may have made the change while we waited.
		var err error
		if kr, err = loadKeyring(ctx, st, name, alg); err != nil {
			return err
		}
		if !kr.due(now, policy) {
			return nil
		}
		if err := kr.advance(now, policy, alg); err != nil {
			return err
		}
		changed = true
		return storeKeyring(ctx, st, name, kr)
	})
	if err != nil {
		return nil, false, err
	}
	return kr, changed, nil
}

// RequestRotation publishes a new next key now, unless one is published
// already; AdvanceKeyring makes it the signing key after the publish lead.
// It returns the keyring and whether this call published the next key.
// There must be a keyring: a gateway makes it at its first start.
func RequestRotation(ctx context.Context, st KeyStorage, name string, alg Algorithm, now time.Time) (*Keyring, bool, error) {
	if err := checkKeyringArgs(st, name, alg); err != nil {
		return nil, false, err
	}
	var kr *Keyring
	published := false
	err := withStorageLock(ctx, st, name, func() error {
		var err error
		if kr, err = loadKeyring(ctx, st, name, alg); err != nil {
			return err
		}
		if kr.Next != nil {
			return nil
		}
		if kr.Next, err = GenerateKey(kr.Current.Algorithm()); err != nil {
			return err
		}
		kr.NextPublishedAt = now
		published = true
		return storeKeyring(ctx, st, name, kr)
	})
	if err != nil {
		return nil, false, err
	}
	return kr, published, nil
}

// due reports whether advance would change the keyring.
func (kr *Keyring) due(now time.Time, p RotationPolicy) bool {
	if kr.Next == nil && p.RotateEvery > 0 && !now.Before(kr.CreatedAt.Add(p.RotateEvery-p.PublishLead)) {
		return true
	}
	if kr.Next != nil && !now.Before(kr.NextPublishedAt.Add(p.PublishLead)) {
		return true
	}
	for _, r := range kr.Previous {
		if !now.Before(retiredKeyExpiry(r.RetiredAt, p.TokenTTL)) {
			return true
		}
	}
	return false
}

// advance makes the changes due at now: drop expired retired keys, promote
// a next key published for the lead, publish a next key when due.
func (kr *Keyring) advance(now time.Time, p RotationPolicy, alg Algorithm) error {
	kept := kr.Previous[:0:0]
	for _, r := range kr.Previous {
		if now.Before(retiredKeyExpiry(r.RetiredAt, p.TokenTTL)) {
			kept = append(kept, r)
		}
	}
	kr.Previous = kept
	if kr.Next != nil && !now.Before(kr.NextPublishedAt.Add(p.PublishLead)) {
		kr.Previous = append([]RetiredKey{{Key: kr.Current, RetiredAt: now}}, kr.Previous...)
		kr.Current, kr.CreatedAt = kr.Next, now
		kr.Next, kr.NextPublishedAt = nil, time.Time{}
	}
	if kr.Next == nil && p.RotateEvery > 0 && !now.Before(kr.CreatedAt.Add(p.RotateEvery-p.PublishLead)) {
		if alg == "" {
			alg = kr.Current.Algorithm()
		}
		next, err := GenerateKey(alg)
		if err != nil {
			return err
		}
		kr.Next, kr.NextPublishedAt = next, now
	}
	return nil
}

// retiredKeyExpiry is when a key retired at retiredAt may stop being published.
func retiredKeyExpiry(retiredAt time.Time, tokenTTL time.Duration) time.Time {
	return retiredAt.Add(tokenTTL + RetiredKeyGrace)
}

func checkKeyringArgs(st KeyStorage, name string, alg Algorithm) error {
	if st == nil {
		return errors.New("no key storage given: pass the storage that keeps generated keys")
	}
	if name == "" {
		return errors.New("no storage name given for the keyring")
	}
	if alg != "" {
		if _, err := ParseAlgorithm(string(alg)); err != nil {
			return err
		}
	}
	return nil
}

// withStorageLock runs fn holding the storage lock on name.
func withStorageLock(ctx context.Context, st KeyStorage, name string, fn func() error) error {
	if err := st.Lock(ctx, name); err != nil {
		return fmt.Errorf("lock keyring %q in storage: %w", name, err)
	}
	defer func() {
		// Unlock even when ctx was cancelled, or other instances wait for the lock to expire.
		_ = st.Unlock(context.WithoutCancel(ctx), name)
	}()
	return fn()
}

// loadKeyring reads and decodes the keyring under name; absent, it returns
// the storage's not-found error.
func loadKeyring(ctx context.Context, st KeyStorage, name string, alg Algorithm) (*Keyring, error) {
	data, err := st.Load(ctx, name)
	if isKeyNotFound(err) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("load keyring %q from storage: %w", name, err)
	}
	kr, err := decodeKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("keyring %q in storage is not usable (restore it from a backup, or remove it to generate a new key, which invalidates every token signed with the old ones): %w", name, err)
	}
	if alg != "" && kr.Current.Algorithm() != alg {
		return nil, fmt.Errorf("keyring %q in storage signs with %s but the configured algorithm is %s: configure %s, or remove the keyring to generate a new %s key",
			name, kr.Current.Algorithm(), alg, kr.Current.Algorithm(), alg)
	}
	return kr, nil
}

func decodeKeyring(data []byte) (*Keyring, error) {
	var doc keyringDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("it is not a keyring JSON document: %w", err)
	}
	if doc.Version != keyringVersion {
		return nil, fmt.Errorf("its version is %d, this build reads version %d", doc.Version, keyringVersion)
	}
	if doc.Current == nil {
		return nil, errors.New("it has no current key")
	}
	kr := &Keyring{CreatedAt: doc.Current.CreatedAt}
	var err error
	if kr.Current, err = ParseKey([]byte(doc.Current.PEM), ""); err != nil {
		return nil, fmt.Errorf("its current key: %w", err)
	}
	if doc.Next != nil {
		if kr.Next, err = ParseKey([]byte(doc.Next.PEM), ""); err != nil {
			return nil, fmt.Errorf("its next key: %w", err)
		}
		kr.NextPublishedAt = doc.Next.PublishedAt
	}
	for n, p := range doc.Previous {
		k, err := ParseKey([]byte(p.PEM), "")
		if err != nil {
			return nil, fmt.Errorf("its previous key #%d: %w", n+1, err)
		}
		kr.Previous = append(kr.Previous, RetiredKey{Key: k, RetiredAt: p.RetiredAt})
	}
	return kr, nil
}

func storeKeyring(ctx context.Context, st KeyStorage, name string, kr *Keyring) error {
	doc := keyringDocument{Version: keyringVersion, Previous: []keyringPrevious{}}
	pemOf := func(k *Key) (string, error) {
		b, err := k.MarshalPKCS8PEM()
		return string(b), err
	}
	cur, err := pemOf(kr.Current)
	if err != nil {
		return err
	}
	doc.Current = &keyringCurrent{PEM: cur, CreatedAt: kr.CreatedAt.UTC()}
	if kr.Next != nil {
		next, err := pemOf(kr.Next)
		if err != nil {
			return err
		}
		doc.Next = &keyringNext{PEM: next, PublishedAt: kr.NextPublishedAt.UTC()}
	}
	for _, r := range kr.Previous {
		p, err := pemOf(r.Key)
		if err != nil {
			return err
		}
		doc.Previous = append(doc.Previous, keyringPrevious{PEM: p, RetiredAt: r.RetiredAt.UTC()})
	}
	data, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return fmt.Errorf("encode keyring: %w", err)
	}
	if err := st.Store(ctx, name, data); err != nil {
		return fmt.Errorf("store keyring %q: %w", name, err)
	}
	return nil
}

// SetKeys replaces every key at once: signing signs, next is published
// without signing (nil for none), and each previous key is published until
// its RetiredAt plus the token TTL plus RetiredKeyGrace. Instances that
// apply the same keyring publish the same JWKS.
func (i *Issuer) SetKeys(signing, next *Key, previous []RetiredKey) error {
	if signing == nil {
		return errors.New("no signing key given")
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	cur := i.keys.Load()
	sk := cur.signing
	if sk.key.kid != signing.kid {
		var err error
		if sk, err = newSigningKey(signing); err != nil {
			return err
		}
	}
	retired := make([]retiredKey, 0, len(previous))
	for _, p := range previous {
		if p.Key == nil {
			continue
		}
		retired = append(retired, retiredKey{key: p.Key, expiresAt: retiredKeyExpiry(p.RetiredAt, i.cfg.TokenTTL)})
	}
	i.keys.Store(i.buildKeySet(sk, next, retired, i.cfg.Now()))
	return nil
}
