package authz

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/convex-auth/caddy-convex-auth/internal/ratelog"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Defaults of ClaimsConfig.
const (
	DefaultClaimsTTL = 5 * time.Minute
	DefaultMaxStale  = time.Hour
)

const (
	// leaseMargin is added to the query's timeout to make the lease: the
	// time one instance has to ask and save before another may. After a
	// failure the lease is left to run out, which spaces the retries.
	leaseMargin = time.Second
	// waitPoll is how often an instance waiting for another's call reads
	// the store.
	waitPoll = 25 * time.Millisecond
	// claimsCacheShards and claimsCacheSize bound what each instance keeps.
	claimsCacheShards = 16
	claimsCacheSize   = 100_000
	logInterval       = 10 * time.Second
)

// ErrClaimsUnavailable: the session has no usable claims because the
// query failed (or the store could not be read) and no result is recent
// enough. Rules that read claims refuse with 503.
var ErrClaimsUnavailable = errors.New("claims unavailable")

// ErrContextRefused: the query returned null for the requested context.
var ErrContextRefused = errors.New("the claims query refused the context")

// ClaimsConfig configures a ClaimsCache.
type ClaimsConfig struct {
	Query QueryConfig
	// TTL is how long a result is reused. Default: DefaultClaimsTTL.
	TTL time.Duration
	// MaxStale is how long past TTL the last result is still used while
	// the query fails. Default: DefaultMaxStale.
	MaxStale time.Duration
	// ContextKeys are the keys a session's context may hold (POST
	// /auth/session/context). Default: none, no context.
	ContextKeys []string
}

// Check reports the first option that is wrong, by name.
func (c ClaimsConfig) Check() error {
	if err := c.Query.Check(); err != nil {
		return err
	}
	if c.TTL < 0 || c.MaxStale < 0 {
		return errors.New("claims: ttl and max_stale must not be negative")
	}
	if c.TTL != 0 && c.TTL < time.Second {
		return fmt.Errorf("claims: ttl %s is under a second: use e.g. 5m (a refresh reaches every instance at once anyway)", c.TTL)
	}
	return CheckContextKeys(c.ContextKeys)
}

// MintFunc mints the token a query call authenticates with: the session's
// token without custom claims.
type MintFunc func(ctx context.Context, sess *session.Session) (string, error)

// Query outcomes, as ClaimsCache reports them.
const (
	QueryOK        = "ok"        // claims returned
	QueryNull      = "null"      // null returned
	QueryFailed    = "failed"    // the function threw
	QueryTransport = "transport" // Convex not reached, or another answer
	QueryRefused   = "refused"   // a value that is not claims
)

// ClaimsCache gets each session's claims: from this instance's memory
// while they are fresh, else from the store (shared by every instance),
// else from the app's query, asked by one instance at a time per session
// (a lease in the store) and once per instance (single flight), so that a
// session costs one call per TTL whatever the load.
type ClaimsCache struct {
	query       *Querier
	store       session.ClaimsStore
	mint        MintFunc
	ttl         time.Duration
	maxStale    time.Duration
	keep        time.Duration // how long the store keeps a result
	lease       time.Duration
	contextKeys []string
	now         func() time.Time
	logger      *zap.Logger
	failLog     *ratelog.Log
	observe     func(outcome string)

	seed       maphash.Seed
	shards     [claimsCacheShards]claimsShard
	flight     singleflight.Group
	epoch      atomic.Uint64 // moves with every change told by the store
	unregister []func()
}

type claimsShard struct {
	mu sync.Mutex
	m  map[string]*claimsEntry
}

// claimsEntry is what an instance keeps of a session's claims.
type claimsEntry struct {
	userID    string
	claims    *Claims   // nil: none usable
	fetchedAt time.Time // of claims
	// retryAt, after a failure: no new attempt before it.
	retryAt time.Time
}

// NewClaimsCache builds the cache on store. now is the clock results are
// stamped with; observe, if set, is told each query call's outcome. Close
// unregisters it from the store.
func NewClaimsCache(cfg ClaimsConfig, store session.ClaimsStore, revocations session.Store, mint MintFunc, now func() time.Time, logger *zap.Logger, observe func(outcome string)) (*ClaimsCache, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	q, err := NewQuerier(cfg.Query)
	if err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultClaimsTTL
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	if now == nil {
		now = time.Now
	}
	if observe == nil {
		observe = func(string) {}
	}
	c := &ClaimsCache{
		query:       q,
		store:       store,
		mint:        mint,
		ttl:         cfg.TTL,
		maxStale:    cfg.MaxStale,
		keep:        cfg.TTL + cfg.MaxStale,
		lease:       q.timeout + leaseMargin,
		contextKeys: cfg.ContextKeys,
		now:         now,
		logger:      logger,
		failLog:     ratelog.New(logger, logInterval),
		observe:     observe,
		seed:        maphash.MakeSeed(),
	}
	for i := range c.shards {
		c.shards[i].m = map[string]*claimsEntry{}
	}
	c.unregister = append(c.unregister,
		store.OnClaimsChange(c.changed),
		revocations.OnRevoke(func(sessionID string) { c.changed("", sessionID) }),
		revocations.OnRevokeAll(c.flush),
	)
	return c, nil
}

// Close unregisters the cache from the store.
func (c *ClaimsCache) Close() {
	for _, fn := range c.unregister {
		fn()
	}
	c.unregister = nil
}

// ContextKeys are the allowed context keys.
func (c *ClaimsCache) ContextKeys() []string { return c.contextKeys }

func (c *ClaimsCache) shard(sessionID string) *claimsShard {
	return &c.shards[maphash.String(c.seed, sessionID)%claimsCacheShards]
}

func (c *ClaimsCache) get(sessionID string) *claimsEntry {
	s := c.shard(sessionID)
	s.mu.Lock()
	e := s.m[sessionID]
	s.mu.Unlock()
	return e
}

// put keeps e unless a change was told since epoch was read.
func (c *ClaimsCache) put(sessionID string, e *claimsEntry, epoch uint64) {
	s := c.shard(sessionID)
	s.mu.Lock()
	if c.epoch.Load() != epoch {
		s.mu.Unlock()
		return
	}
	if len(s.m) >= claimsCacheSize/claimsCacheShards {
		now := c.now()
		for id, old := range s.m {
			if !c.usable(old, now) && !now.Before(old.retryAt) {
				delete(s.m, id)
			}
		}
		if len(s.m) >= claimsCacheSize/claimsCacheShards {
			clear(s.m)
		}
	}
	s.m[sessionID] = e
	s.mu.Unlock()
}

func (c *ClaimsCache) drop(sessionID string) {
	s := c.shard(sessionID)
	s.mu.Lock()
	delete(s.m, sessionID)
	s.mu.Unlock()
}

// changed is told of a refresh (userID) or a context switch or end
// (sessionID), on whichever instance it was made.
func (c *ClaimsCache) changed(userID, sessionID string) {
	c.epoch.Add(1)
	if sessionID != "" {
		c.drop(sessionID)
	}
	if userID != "" {
		// Refreshes are rare: a scan costs less than an index kept up to
		// date on every put.
		for i := range c.shards {
			s := &c.shards[i]
			s.mu.Lock()
			for id, e := range s.m {
				if e.userID == userID {
					delete(s.m, id)
				}
			}
			s.mu.Unlock()
		}
	}
}

func (c *ClaimsCache) flush() {
	c.epoch.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}

func (c *ClaimsCache) fresh(e *claimsEntry, now time.Time) bool {
	return e.claims != nil && now.Before(e.fetchedAt.Add(c.ttl)) && !now.Before(e.fetchedAt)
}

// usable: a result still good enough while the query fails.
func (c *ClaimsCache) usable(e *claimsEntry, now time.Time) bool {
	return e.claims != nil && now.Before(e.fetchedAt.Add(c.ttl+c.maxStale))
}

// For returns the session's claims. ErrClaimsUnavailable means none are
// usable: the token goes without custom claims, and rules that read them
// refuse.
func (c *ClaimsCache) For(ctx context.Context, sess *session.Session) (*Claims, error) {
	now := c.now()
	if e := c.get(sess.ID); e != nil && e.userID == sess.UserID && c.store.ClaimsChangesLive() {
		if c.fresh(e, now) {
			return e.claims, nil
		}
		if now.Before(e.retryAt) {
			return c.staleOr(e, now)
		}
	}
	v, err, _ := c.flight.Do(sess.ID, func() (any, error) {
		return c.load(context.WithoutCancel(ctx), sess)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Claims), nil
}

func (c *ClaimsCache) staleOr(e *claimsEntry, now time.Time) (*Claims, error) {
	if c.usable(e, now) {
		return e.claims, nil
	}
	return nil, ErrClaimsUnavailable
}

// load finds the session's claims past this instance's memory.
func (c *ClaimsCache) load(ctx context.Context, sess *session.Session) (*Claims, error) {
	epoch := c.epoch.Load()
	prev := c.get(sess.ID)
	if prev != nil && prev.userID != sess.UserID {
		prev = nil
	}
	st, err := c.store.LoadClaims(ctx, sess.UserID, sess.ID)
	if err != nil {
		c.failLog.Warn("claims: the store could not be read; using what this instance has", err)
		return c.failed(sess, prev, nil, epoch)
	}
	stored := c.entryOf(sess, st, prev)
	now := c.now()
	if stored != nil && c.fresh(stored, now) {
		c.put(sess.ID, stored, epoch)
		return stored.claims, nil
	}
	lease, err := c.store.LeaseClaims(ctx, sess.UserID, sess.ID, c.lease)
	if err != nil {
		c.failLog.Warn("claims: the store could not be written; using what this instance has", err)
		return c.failed(sess, prev, stored, epoch)
	}
	if lease == "" {
		return c.awaitOther(ctx, sess, stored, prev, epoch)
	}
	// Another instance may have asked, stored and released its lease
	// between the read above and this lease: read again before asking.
	if again, err := c.store.LoadClaims(ctx, sess.UserID, sess.ID); err == nil {
		if e := c.entryOf(sess, again, prev); e != nil && c.fresh(e, c.now()) {
			_ = c.store.ReleaseClaims(ctx, sess.UserID, sess.ID, lease)
			c.put(sess.ID, e, epoch)
			return e.claims, nil
		}
		st = again
	}
	claims, err := c.ask(ctx, sess, st.Context)
	if err != nil {
		// The lease is left to run out: no instance asks again before.
		return c.failed(sess, prev, stored, epoch)
	}
	if claims == nil {
		claims = NoClaims // null: no claims in this context
	}
	now = c.now()
	rec := session.ClaimsRecord{Claims: claims.JSON(), FetchedAt: now, Generation: st.Generation}
	saved, err := c.store.SaveClaims(ctx, sess.UserID, sess.ID, rec, c.keep)
	if err != nil {
		c.failLog.Warn("claims: a result could not be stored; other instances will ask again", err)
	}
	_ = c.store.ReleaseClaims(ctx, sess.UserID, sess.ID, lease)
	if prev != nil && prev.claims.Equal(claims) {
		claims = prev.claims // same claims, same pointer: tokens minted with them stay good
	}
	if saved {
		c.put(sess.ID, &claimsEntry{userID: sess.UserID, claims: claims, fetchedAt: now}, epoch)
	}
	return claims, nil
}

// entryOf makes an entry of the store's record, reusing prev's Claims when
// they are the same.
func (c *ClaimsCache) entryOf(sess *session.Session, st session.ClaimsState, prev *claimsEntry) *claimsEntry {
	if st.Record == nil {
		return nil
	}
	claims, err := ParseClaims(st.Record.Claims)
	if err != nil {
		return nil
	}
	if prev != nil && prev.claims.Equal(claims) {
		claims = prev.claims
	}
	return &claimsEntry{userID: sess.UserID, claims: claims, fetchedAt: st.Record.FetchedAt}
}

// awaitOther: another instance holds the lease. A result still usable is
// used at once; else the store is read until that instance's result is
// there or its lease has run out.
func (c *ClaimsCache) awaitOther(ctx context.Context, sess *session.Session, stored, prev *claimsEntry, epoch uint64) (*Claims, error) {
	now := c.now()
	for _, e := range []*claimsEntry{stored, prev} {
		if e != nil && c.usable(e, now) {
			return e.claims, nil
		}
	}
	deadline := time.Now().Add(c.lease)
	for time.Now().Before(deadline) {
		t := time.NewTimer(waitPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ErrClaimsUnavailable
		case <-t.C:
		}
		st, err := c.store.LoadClaims(ctx, sess.UserID, sess.ID)
		if err != nil {
			break
		}
		if e := c.entryOf(sess, st, prev); e != nil && c.fresh(e, c.now()) {
			c.put(sess.ID, e, epoch)
			return e.claims, nil
		}
	}
	return c.failed(sess, prev, stored, epoch)
}

// failed remembers a failure until the lease would have run out, and
// returns the best result still usable, if any.
func (c *ClaimsCache) failed(sess *session.Session, prev, stored *claimsEntry, epoch uint64) (*Claims, error) {
	now := c.now()
	e := &claimsEntry{userID: sess.UserID, retryAt: now.Add(c.lease)}
	for _, cand := range []*claimsEntry{stored, prev} {
		if cand != nil && c.usable(cand, now) && (e.claims == nil || cand.fetchedAt.After(e.fetchedAt)) {
			e.claims, e.fetchedAt = cand.claims, cand.fetchedAt
		}
	}
	c.put(sess.ID, e, epoch)
	return c.staleOr(e, now)
}

// ask calls the query for the session with sessionContext; nil claims
// and no error: the query returned null.
func (c *ClaimsCache) ask(ctx context.Context, sess *session.Session, sessionContext []byte) (*Claims, error) {
	token, err := c.mint(ctx, sess)
	if err != nil {
		c.failLog.Warn("claims: no token could be minted for the query", err)
		return nil, err
	}
	claims, err := c.query.Call(ctx, token, sessionContext)
	switch {
	case errors.Is(err, ErrClaimsRefused):
		c.observe(QueryRefused)
		// Every time: it is the app's bug, and names no secret.
		c.logger.Error("claims: the query's value was refused whole; fix the query",
			zap.String("query", c.query.path), zap.String("user_id", sess.UserID), zap.Error(err))
		return nil, err
	case errors.Is(err, ErrQueryFailed):
		c.observe(QueryFailed)
		c.failLog.Warn("claims: the query failed", err)
		return nil, err
	case err != nil:
		c.observe(QueryTransport)
		c.failLog.Warn("claims: the query could not be called", err)
		return nil, err
	case claims == nil:
		c.observe(QueryNull)
		return nil, nil
	}
	c.observe(QueryOK)
	return claims, nil
}

// SwitchContext asks the query for the session's claims in the context
// the request body names, and stores both unless the query returns null
// (ErrContextRefused: nothing changes). A body that is not a context of
// the allowed keys is ErrBadContext; a query that fails is
// ErrClaimsUnavailable.
func (c *ClaimsCache) SwitchContext(ctx context.Context, sess *session.Session, body []byte) (*Claims, error) {
	if len(c.contextKeys) == 0 {
		return nil, fmt.Errorf("%w: this site has no session context (claims { context … })", ErrBadContext)
	}
	sessionContext, err := parseContext(body, c.contextKeys)
	if err != nil {
		return nil, err
	}
	st, err := c.store.LoadClaims(ctx, sess.UserID, sess.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClaimsUnavailable, err)
	}
	claims, err := c.ask(ctx, sess, sessionContext)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrClaimsUnavailable, err)
	case claims == nil:
		return nil, ErrContextRefused
	}
	rec := session.ClaimsRecord{Claims: claims.JSON(), FetchedAt: c.now(), Generation: st.Generation}
	if err := c.store.SetClaimsContext(ctx, sess.UserID, sess.ID, sessionContext, sess.ExpiresAt, rec, c.keep); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClaimsUnavailable, err)
	}
	return claims, nil
}

// RefreshUser makes every instance drop the user's claims and ask the
// query again.
func (c *ClaimsCache) RefreshUser(ctx context.Context, userID string) error {
	return c.store.RefreshClaims(ctx, userID, c.keep)
}
