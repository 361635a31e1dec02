package session

import (
	"context"
	"sync"
)

// Store keeps sessions. Every error other than one wrapping ErrNotFound (or
// ErrInvalidSession from Create) wraps ErrUnavailable: the backend failed.
type Store interface {
	// Create starts a session with a new random token and a new session ID.
	Create(ctx context.Context, s NewSession) (token string, sess *Session, err error)
	// Lookup returns the token's session, enforcing absolute and idle
	// expiry, and writes last use at most once per touch interval. When ctx
	// has no deadline, a lookup that goes to the backend gives up after
	// DefaultLookupTimeout.
	Lookup(ctx context.Context, token string) (*Session, error)
	// Delete ends the token's session; no error if it is already gone.
	Delete(ctx context.Context, token string) error
	// DeleteByID ends one of the user's sessions; ErrNotFound if the user has
	// no session with that ID.
	DeleteByID(ctx context.Context, userID, sessionID string) error
	// DeleteUser ends all the user's sessions but exceptSessionID (empty: all)
	// in one atomic step and returns how many it ended.
	DeleteUser(ctx context.Context, userID string, exceptSessionID string) (int, error)
	// List returns the user's live sessions, oldest first.
	List(ctx context.Context, userID string) ([]*Session, error)
	// SetProfile gives every live session of the user the profile p (the
	// user's, changed: a new display name), in place: each keeps its
	// token, ID and times. Every instance drops what it keeps of the
	// sessions that changed (OnRevoke hooks: a cached token carries the
	// old profile), so their next token carries p. It returns how many
	// changed; ErrInvalidSession if p breaks a limit.
	SetProfile(ctx context.Context, userID string, p Profile) (int, error)
	// OnRevoke registers fn, called with the ID of every session deleted,
	// or changed in place, on any instance sharing the backend, until the
	// returned function unregisters it: whatever the caller keeps of that
	// session (a minted token) is stale. fn must be fast and must not call
	// the store.
	OnRevoke(fn func(sessionID string)) (unregister func())
	// OnRevokeAll registers fn, called when revocations may have been missed
	// (the Redis pub/sub connection dropped): drop all per-session state.
	// The returned function unregisters it.
	OnRevokeAll(fn func()) (unregister func())
	// Ping checks that the backend answers.
	Ping(ctx context.Context) error
	// Close releases connections and goroutines.
	Close() error
}

// revokeHooks holds the callbacks registered with OnRevoke and OnRevokeAll.
// Each is kept under its own key so that a handler that goes away (a config
// reload) can unregister its own without touching the others'.
type revokeHooks struct {
	mu   sync.RWMutex
	next uint64
	one  map[uint64]func(sessionID string)
	all  map[uint64]func()
}

func (h *revokeHooks) onRevoke(fn func(string)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.one == nil {
		h.one = make(map[uint64]func(string))
	}
	h.next++
	id := h.next
	h.one[id] = fn
	return func() {
		h.mu.Lock()
		delete(h.one, id)
		h.mu.Unlock()
	}
}

func (h *revokeHooks) onRevokeAll(fn func()) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.all == nil {
		h.all = make(map[uint64]func())
	}
	h.next++
	id := h.next
	h.all[id] = fn
	return func() {
		h.mu.Lock()
		delete(h.all, id)
		h.mu.Unlock()
	}
}

func (h *revokeHooks) revoked(sessionIDs ...string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, id := range sessionIDs {
		for _, fn := range h.one {
			fn(id)
		}
	}
}

func (h *revokeHooks) revokedAll() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, fn := range h.all {
		fn()
	}
}
