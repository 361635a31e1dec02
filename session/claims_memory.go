package session

import (
	"context"
	"crypto/rand"
	"slices"
	"time"
)

// memoryClaims is the in-process store's claims state, guarded by the
// store's mutex. A session's entries go when the session is gone.
type memoryClaims struct {
	records  map[string]memoryClaimsRecord  // by session ID
	contexts map[string]memoryClaimsContext // by session ID
	gens     map[string]memoryGeneration    // by user ID
	leases   map[string]memoryLease         // by session ID
	writes   int                            // since the last sweep
	hooks    claimsHooks
}

type memoryClaimsRecord struct {
	rec    ClaimsRecord
	userID string
	until  time.Time
}

type memoryClaimsContext struct {
	userID string
	value  []byte
	until  time.Time
}

type memoryGeneration struct {
	n     uint64
	until time.Time
}

type memoryLease struct {
	id    string
	until time.Time
}

// memoryClaimsSweepEvery: every this many writes, entries of ended
// sessions are dropped.
const memoryClaimsSweepEvery = 1024

func (c *memoryClaims) init() {
	if c.records == nil {
		c.records = map[string]memoryClaimsRecord{}
		c.contexts = map[string]memoryClaimsContext{}
		c.gens = map[string]memoryGeneration{}
		c.leases = map[string]memoryLease{}
	}
}

// generationLocked is the user's current generation.
func (m *MemoryStore) generationLocked(userID string, now time.Time) uint64 {
	g, ok := m.claims.gens[userID]
	if !ok || !now.Before(g.until) {
		return 0
	}
	return g.n
}

// sessionOfLocked reports whether the user's session exists.
func (m *MemoryStore) sessionOfLocked(userID, sessionID string) bool {
	s := m.sessions[sessionID]
	return s != nil && s.UserID == userID
}

// sweepClaimsLocked counts a write and, now and then, drops the entries
// whose session or time is gone.
func (m *MemoryStore) sweepClaimsLocked(now time.Time) {
	c := &m.claims
	if c.writes++; c.writes < memoryClaimsSweepEvery {
		return
	}
	c.writes = 0
	for id, r := range c.records {
		if !now.Before(r.until) || !m.sessionOfLocked(r.userID, id) {
			delete(c.records, id)
		}
	}
	for id, x := range c.contexts {
		if !now.Before(x.until) || !m.sessionOfLocked(x.userID, id) {
			delete(c.contexts, id)
		}
	}
	for u, g := range c.gens {
		if !now.Before(g.until) {
			delete(c.gens, u)
		}
	}
	for id, l := range c.leases {
		if !now.Before(l.until) {
			delete(c.leases, id)
		}
	}
}

// LoadClaims implements ClaimsStore.
func (m *MemoryStore) LoadClaims(ctx context.Context, userID, sessionID string) (ClaimsState, error) {
	if err := checkClaimsInput(userID, sessionID, nil); err != nil {
		return ClaimsState{}, err
	}
	now := m.opts.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ClaimsState{}, unavailable("load claims", errMemoryClosed)
	}
	m.claims.init()
	st := ClaimsState{Generation: m.generationLocked(userID, now)}
	if !m.sessionOfLocked(userID, sessionID) {
		return st, nil
	}
	if r, ok := m.claims.records[sessionID]; ok && r.userID == userID && now.Before(r.until) && r.rec.Generation == st.Generation {
		rec := r.rec
		rec.Claims = slices.Clone(rec.Claims)
		st.Record = &rec
	}
	if x, ok := m.claims.contexts[sessionID]; ok && x.userID == userID && now.Before(x.until) {
		st.Context = slices.Clone(x.value)
	}
	return st, nil
}

// SaveClaims implements ClaimsStore.
func (m *MemoryStore) SaveClaims(ctx context.Context, userID, sessionID string, rec ClaimsRecord, keep time.Duration) (bool, error) {
	if err := checkClaimsInput(userID, sessionID, nil); err != nil {
		return false, err
	}
	now := m.opts.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, unavailable("save claims", errMemoryClosed)
	}
	m.claims.init()
	return m.saveClaimsLocked(userID, sessionID, rec, keep, now), nil
}

func (m *MemoryStore) saveClaimsLocked(userID, sessionID string, rec ClaimsRecord, keep time.Duration, now time.Time) bool {
	if m.generationLocked(userID, now) != rec.Generation {
		return false
	}
	rec.Claims = slices.Clone(rec.Claims)
	m.claims.records[sessionID] = memoryClaimsRecord{rec: rec, userID: userID, until: now.Add(keep)}
	if g, ok := m.claims.gens[userID]; ok && g.until.Before(now.Add(keep)) {
		g.until = now.Add(keep)
		m.claims.gens[userID] = g
	}
	m.sweepClaimsLocked(now)
	return true
}

// LeaseClaims implements ClaimsStore.
func (m *MemoryStore) LeaseClaims(ctx context.Context, userID, sessionID string, d time.Duration) (string, error) {
	if err := checkClaimsInput(userID, sessionID, nil); err != nil {
		return "", err
	}
	id := rand.Text()
	now := m.opts.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", unavailable("lease claims", errMemoryClosed)
	}
	m.claims.init()
	if l, ok := m.claims.leases[sessionID]; ok && now.Before(l.until) {
		return "", nil
	}
	m.claims.leases[sessionID] = memoryLease{id: id, until: now.Add(d)}
	return id, nil
}

// ReleaseClaims implements ClaimsStore.
func (m *MemoryStore) ReleaseClaims(ctx context.Context, userID, sessionID, lease string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return unavailable("release claims", errMemoryClosed)
	}
	if l, ok := m.claims.leases[sessionID]; ok && l.id == lease {
		delete(m.claims.leases, sessionID)
	}
	return nil
}

// SetClaimsContext implements ClaimsStore.
func (m *MemoryStore) SetClaimsContext(ctx context.Context, userID, sessionID string, sessionContext []byte, until time.Time, rec ClaimsRecord, keep time.Duration) error {
	if err := checkClaimsInput(userID, sessionID, sessionContext); err != nil {
		return err
	}
	now := m.opts.now()
	if !now.Before(until) {
		return ErrNotFound
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return unavailable("set claims context", errMemoryClosed)
	}
	m.claims.init()
	if sessionContext == nil {
		sessionContext = []byte("{}")
	}
	m.claims.contexts[sessionID] = memoryClaimsContext{userID: userID, value: slices.Clone(sessionContext), until: until}
	if !m.saveClaimsLocked(userID, sessionID, rec, keep, now) {
		// The result was for the previous context.
		delete(m.claims.records, sessionID)
	}
	m.mu.Unlock()
	m.claims.hooks.changed("", sessionID)
	return nil
}

// RefreshClaims implements ClaimsStore.
func (m *MemoryStore) RefreshClaims(ctx context.Context, userID string, keep time.Duration) error {
	if userID == "" {
		return nil
	}
	now := m.opts.now()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return unavailable("refresh claims", errMemoryClosed)
	}
	m.claims.init()
	g := m.claims.gens[userID]
	if !now.Before(g.until) {
		g.n = 0
	}
	g.n++
	g.until = later(g.until, now.Add(keep))
	m.claims.gens[userID] = g
	m.mu.Unlock()
	m.claims.hooks.changed(userID, "")
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// OnClaimsChange implements ClaimsStore.
func (m *MemoryStore) OnClaimsChange(fn func(userID, sessionID string)) func() {
	return m.claims.hooks.add(fn)
}

// ClaimsChangesLive implements ClaimsStore: in one process, always.
func (m *MemoryStore) ClaimsChangesLive() bool { return true }
