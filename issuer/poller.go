package issuer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Defaults of PollerConfig.
const (
	// DefaultPollInterval is how often a KeyringPoller reads the keyring
	// (and, when something is due, advances it). Other instances see a
	// rotation within one interval; DefaultPublishLead leaves room for it on
	// top of what verifiers cache.
	DefaultPollInterval = 5 * time.Second
	// DefaultPollTimeout bounds one poll, including waiting for the storage lock.
	DefaultPollTimeout = time.Minute
)

// PollerConfig configures a KeyringPoller.
type PollerConfig struct {
	// Name is the keyring's storage name. Required.
	Name string
	// Algorithm is the configured algorithm; "" accepts the stored keyring's.
	Algorithm Algorithm
	// Policy says when the keyring advances. Zero fields take their defaults.
	Policy RotationPolicy
	// Interval is the time between polls. Default DefaultPollInterval.
	Interval time.Duration
	// Timeout bounds one poll. Default DefaultPollTimeout.
	Timeout time.Duration
	// OnAdvance, if set, is called with the keyring after a poll of this
	// poller changed it.
	OnAdvance func(kr *Keyring, policy RotationPolicy)
	// OnError, if set, is called when a poll cannot read or advance the
	// keyring, or an issuer refuses it. The issuers keep the keys they have.
	OnError func(err error)
}

// KeyringPoller polls one stored keyring: it advances it along the policy
// (only the instance holding the storage lock changes anything) and applies
// what is stored to every issuer added to it, so that all instances sharing
// the storage converge on one published key set.
type KeyringPoller struct {
	cfg    PollerConfig
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	storage KeyStorage                  // the newest Add's; a reload may change it
	issuers map[*Issuer]keyringRevision // what each issuer publishes now
}

// NewKeyringPoller checks cfg and returns a poller that polls only when
// Poll is called; Start runs it in the background.
func NewKeyringPoller(cfg PollerConfig) (*KeyringPoller, error) {
	if cfg.Name == "" {
		return nil, errors.New("no storage name given for the keyring")
	}
	policy, err := cfg.Policy.WithDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Policy = policy
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPollInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultPollTimeout
	}
	return &KeyringPoller{cfg: cfg, issuers: make(map[*Issuer]keyringRevision)}, nil
}

// Start polls every Interval until Stop.
func (p *KeyringPoller) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.run(ctx)
}

// Stop ends the polling Start began and waits for a poll under way.
func (p *KeyringPoller) Stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
}

// Add makes the poller keep iss on the keyring in st; applied is the
// keyring iss publishes already.
func (p *KeyringPoller) Add(iss *Issuer, st KeyStorage, applied *Keyring) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.storage = st
	p.issuers[iss] = revisionOf(applied)
}

// Remove stops applying the keyring to iss.
func (p *KeyringPoller) Remove(iss *Issuer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.issuers, iss)
}

func (p *KeyringPoller) run(ctx context.Context) {
	defer close(p.done)
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			p.Poll(ctx)
		}
	}
}

// Poll advances the stored keyring if something is due and applies it.
func (p *KeyringPoller) Poll(ctx context.Context) {
	p.mu.Lock()
	st := p.storage
	p.mu.Unlock()
	if st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	kr, changed, err := AdvanceKeyring(ctx, st, p.cfg.Name, p.cfg.Algorithm, time.Now(), p.cfg.Policy)
	if err != nil {
		if !errors.Is(err, context.Canceled) { // Stop, not a fault
			p.reportError(err)
		}
		return
	}
	if changed && p.cfg.OnAdvance != nil {
		p.cfg.OnAdvance(kr, p.cfg.Policy)
	}
	p.apply(kr)
}

func (p *KeyringPoller) reportError(err error) {
	if p.cfg.OnError != nil {
		p.cfg.OnError(err)
	}
}

// apply makes every issuer publish and sign with kr, unless it does already.
func (p *KeyringPoller) apply(kr *Keyring) {
	rev := revisionOf(kr)
	p.mu.Lock()
	defer p.mu.Unlock()
	for iss, applied := range p.issuers {
		if applied == rev {
			continue
		}
		if err := iss.SetKeys(kr.Current, kr.Next, kr.Previous); err != nil {
			p.reportError(fmt.Errorf("applying the signing keyring: %w", err))
			continue
		}
		p.issuers[iss] = rev
	}
}

// keyringRevision identifies a keyring's content: the kids and times.
type keyringRevision string

func revisionOf(kr *Keyring) keyringRevision {
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%d", kr.Current.ID(), kr.CreatedAt.UnixNano())
	if kr.Next != nil {
		fmt.Fprintf(&b, " next %s@%d", kr.Next.ID(), kr.NextPublishedAt.UnixNano())
	}
	for _, r := range kr.Previous {
		fmt.Fprintf(&b, " prev %s@%d", r.Key.ID(), r.RetiredAt.UnixNano())
	}
	return keyringRevision(b.String())
}
