package session

import (
	"context"
	"errors"
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
	if err := n.validate(); err != nil {
		return "", nil, err
	}
	token, p, err := newToken(n.UserID)
	if err != nil {
		return "", nil, err
	}
	now := m.opts.now()
	sess := &Session{
		ID:         p.sessionID,
		UserID:     n.UserID,
		Provider:   n.Provider,
		CreatedAt:  now,
		ExpiresAt:  now.Add(m.opts.SessionTTL).Truncate(time.Millisecond),
		LastUsedAt: now,
		Profile:    n.Profile,
		UserAgent:  CapUserAgent(n.UserAgent),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", nil, unavailable("create", errMemoryClosed)
	}
	m.sessions[sess.ID] = sess
	ids := m.byUser[n.UserID]
	if ids == nil {
		ids = make(map[string]struct{})
		m.byUser[n.UserID] = ids
	}
	ids[sess.ID] = struct{}{}
	return token, sess.clone(), nil
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
