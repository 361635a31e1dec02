package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// memorySweepInterval is how often the in-process store drops expired
// sessions that nobody looked up.
const memorySweepInterval = time.Minute

// MemoryStore keeps sessions in this process: for development only. Sessions
// end when the process exits and are not shared with other instances. It
// is bounded only by the sessions that exist; expired ones are removed on
// access and by a periodic sweep.
type MemoryStore struct {
	opts  Options
	hooks revokeHooks

	mu       sync.Mutex
	sessions map[string]*Session            // by session ID
	byUser   map[string]map[string]struct{} // user ID -> session IDs
	closed   bool

	users   *memoryUsers  // users, accounts, single-use values, rate counters
	claims  memoryClaims  // ClaimsStore, under mu
	factors memoryFactors // SecondFactors
	limits  memoryLimits  // Limiter

	instances memoryInstances // InstanceRegistry

	stopSweep chan struct{}
	sweepDone chan struct{}
	closeOnce sync.Once
}

var (
	_ Store            = (*MemoryStore)(nil)
	_ InstanceRegistry = (*MemoryStore)(nil)
)

// NewMemoryStore returns an in-process store. Options that Validate would
// reject are replaced by workable values; call Options.Validate first to
// report them.
func NewMemoryStore(opts Options) *MemoryStore {
	m := &MemoryStore{
		opts:      opts.withDefaults(),
		sessions:  make(map[string]*Session),
		byUser:    make(map[string]map[string]struct{}),
		users:     newMemoryUsers(),
		instances: make(memoryInstances),
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	go m.sweepLoop()
	return m
}

var errMemoryClosed = errors.New("in-process store is closed")

func (m *MemoryStore) sweepLoop() {
	defer close(m.sweepDone)
	t := time.NewTicker(memorySweepInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stopSweep:
			return
		case <-t.C:
			m.sweepAll()
		}
	}
}

// sweepAll drops expired sessions, single-use values and counters, and
// purges guests past their expiry with their sessions.
func (m *MemoryStore) sweepAll() {
	m.sweep()
	for _, id := range m.users.sweep(m.opts.now()) {
		_ = m.purge(context.Background(), id)
	}
	m.limits.sweep(m.opts.now())
}

// sweep removes every expired session.
func (m *MemoryStore) sweep() {
	now := m.opts.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.sessions {
		if s.expired(now, m.opts.IdleTTL) {
			m.removeLocked(s.UserID, id)
		}
	}
}

func (m *MemoryStore) removeLocked(userID, id string) {
	delete(m.sessions, id)
	if ids := m.byUser[userID]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(m.byUser, userID)
		}
	}
}

// Create implements Store.
func (m *MemoryStore) Create(ctx context.Context, n NewSession) (string, *Session, error) {
	token, sess, _, err := m.CreateEvicting(ctx, n)
	return token, sess, err
}

// CreateEvicting implements Evicting.
func (m *MemoryStore) CreateEvicting(ctx context.Context, n NewSession) (string, *Session, []string, error) {
	if err := n.validate(); err != nil {
		return "", nil, nil, err
	}
	token, p, err := newToken(n.UserID)
	if err != nil {
		return "", nil, nil, err
	}
	now := m.opts.now()
	sess := &Session{
		ID:         p.sessionID,
		UserID:     n.UserID,
		Provider:   n.Provider,
		CreatedAt:  now,
		ExpiresAt:  n.expiresAt(now, m.opts.SessionTTL),
		LastUsedAt: now,
		Profile:    n.Profile,
		UserAgent:  CapUserAgent(n.UserAgent),
		AuthTime:   now,
		AMR:        slices.Clone(n.AMR),
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return "", nil, nil, unavailable("create", errMemoryClosed)
	}
	m.sessions[sess.ID] = sess
	ids := m.byUser[n.UserID]
	if ids == nil {
		ids = make(map[string]struct{})
		m.byUser[n.UserID] = ids
	}
	ids[sess.ID] = struct{}{}
	evicted := m.capLocked(n.UserID, sess.ID, now)
	m.mu.Unlock()
	m.hooks.revoked(evicted...)
	return token, sess.clone(), evicted, nil
}

// capLocked removes the user's ended sessions and, past the cap, the live
// ones that would end first unused, never newID; it returns the IDs of
// the live ones it ended.
func (m *MemoryStore) capLocked(userID, newID string, now time.Time) []string {
	var older []*Session
	for id := range m.byUser[userID] {
		s := m.sessions[id]
		switch {
		case s.expired(now, m.opts.IdleTTL):
			m.removeLocked(userID, id)
		case id != newID:
			older = append(older, s)
		}
	}
	over := len(older) + 1 - m.opts.MaxSessionsPerUser
	if over <= 0 {
		return nil
	}
	slices.SortFunc(older, func(a, b *Session) int {
		if c := a.EndsAt(m.opts.IdleTTL).Compare(b.EndsAt(m.opts.IdleTTL)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	evicted := make([]string, 0, over)
	for _, s := range older[:over] {
		m.removeLocked(userID, s.ID)
		evicted = append(evicted, s.ID)
	}
	return evicted
}

// Lookup implements Store.
func (m *MemoryStore) Lookup(ctx context.Context, token string) (*Session, error) {
	p, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	now := m.opts.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, unavailable("lookup", errMemoryClosed)
	}
	s := m.sessions[p.sessionID]
	if s == nil {
		return nil, ErrNotFound
	}
	if s.expired(now, m.opts.IdleTTL) {
		m.removeLocked(s.UserID, s.ID)
		return nil, &EndedError{Session: s.clone()}
	}
	if m.opts.needsTouch(s, now) {
		s.LastUsedAt = now
	}
	return s.clone(), nil
}

// LookupRef implements Store.
func (m *MemoryStore) LookupRef(ctx context.Context, ref Ref) (*Session, error) {
	if !ref.Valid() {
		return nil, ErrNotFound
	}
	now := m.opts.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, unavailable("lookup", errMemoryClosed)
	}
	s := m.sessions[ref.SessionID]
	if s == nil || userTag(s.UserID) != ref.UserTag {
		return nil, ErrNotFound
	}
	if s.expired(now, m.opts.IdleTTL) {
		m.removeLocked(s.UserID, s.ID)
		return nil, &EndedError{Session: s.clone()}
	}
	return s.clone(), nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(ctx context.Context, token string) error {
	p, err := parseToken(token)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return unavailable("delete", errMemoryClosed)
	}
	if s := m.sessions[p.sessionID]; s != nil {
		m.removeLocked(s.UserID, s.ID)
	}
	m.mu.Unlock()
	m.hooks.revoked(p.sessionID)
	return nil
}

// DeleteByID implements Store.
func (m *MemoryStore) DeleteByID(ctx context.Context, userID, sessionID string) error {
	now := m.opts.now()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return unavailable("delete by id", errMemoryClosed)
	}
	s := m.sessions[sessionID]
	if s == nil || s.UserID != userID {
		m.mu.Unlock()
		return ErrNotFound
	}
	m.removeLocked(userID, sessionID)
	live := !s.expired(now, m.opts.IdleTTL)
	m.mu.Unlock()
	m.hooks.revoked(sessionID)
	if !live {
		return ErrNotFound
	}
	return nil
}

// DeleteUser implements Store.
func (m *MemoryStore) DeleteUser(ctx context.Context, userID string, exceptSessionID string) (int, error) {
	now := m.opts.now()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, unavailable("delete user", errMemoryClosed)
	}
	var revoked []string
	ended := 0
	for id := range m.byUser[userID] {
		if id == exceptSessionID {
			continue
		}
		if !m.sessions[id].expired(now, m.opts.IdleTTL) {
			ended++
		}
		m.removeLocked(userID, id)
		revoked = append(revoked, id)
	}
	m.mu.Unlock()
	m.hooks.revoked(revoked...)
	return ended, nil
}

// List implements Store.
func (m *MemoryStore) List(ctx context.Context, userID string) ([]*Session, error) {
	now := m.opts.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, unavailable("list", errMemoryClosed)
	}
	out := []*Session{}
	for id := range m.byUser[userID] {
		s := m.sessions[id]
		if s.expired(now, m.opts.IdleTTL) {
			m.removeLocked(userID, id)
			continue
		}
		out = append(out, s.clone())
	}
	sortSessions(out)
	return out, nil
}

// Reauthenticate implements Store.
func (m *MemoryStore) Reauthenticate(ctx context.Context, userID, sessionID string, at time.Time, amr []string) error {
	if err := ValidateAMR(amr); err != nil {
		return err
	}
	now := m.opts.now()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return unavailable("reauthenticate", errMemoryClosed)
	}
	s := m.sessions[sessionID]
	if s == nil || s.UserID != userID || s.expired(now, m.opts.IdleTTL) {
		m.mu.Unlock()
		return ErrNotFound
	}
	// Sessions handed out are clones: replace, never change in place.
	c := s.clone()
	c.AuthTime, c.AMR = time.UnixMilli(at.UnixMilli()).UTC(), slices.Clone(amr)
	m.sessions[sessionID] = c
	m.mu.Unlock()
	m.hooks.revoked(sessionID)
	return nil
}

// OnRevoke implements Store.
func (m *MemoryStore) OnRevoke(fn func(sessionID string)) func() { return m.hooks.onRevoke(fn) }

// OnRevokeAll implements Store. The in-process store never misses a
// revocation, so it never calls fn.
func (m *MemoryStore) OnRevokeAll(fn func()) func() { return m.hooks.onRevokeAll(fn) }

// Ping implements Store.
func (m *MemoryStore) Ping(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return unavailable("ping", errMemoryClosed)
	}
	return nil
}

// Close implements Store: it stops the sweeper and drops every session.
func (m *MemoryStore) Close() error {
	m.closeOnce.Do(func() {
		close(m.stopSweep)
		<-m.sweepDone
		m.mu.Lock()
		m.closed = true
		clear(m.sessions)
		clear(m.byUser)
		m.mu.Unlock()
		m.users.clear()
	})
	return nil
}
