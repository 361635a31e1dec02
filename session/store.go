package session

import (
	"context"
	"sync"
	"time"
)

// Store keeps sessions. Every error other than one wrapping ErrNotFound (or
// ErrInvalidSession from Create and Reauthenticate) wraps ErrUnavailable:
// the backend failed.
type Store interface {
	// Create starts a session with a new random token and a new session ID.
	// A user has at most Options.MaxSessionsPerUser sessions: at the cap,
	// the one that would end first unused (the least recently used) ends,
	// announced as a revocation is (Evicting says which). Ended sessions
	// of the user are pruned from its index on the way.
	Create(ctx context.Context, s NewSession) (token string, sess *Session, err error)
	// Lookup returns the token's session, enforcing absolute and idle
	// expiry, and writes last use at most once per touch interval. When ctx
	// has no deadline, a lookup that goes to the backend gives up after
	// DefaultLookupTimeout.
	Lookup(ctx context.Context, token string) (*Session, error)
	// LookupRef returns the session ref names as Lookup would return the
	// token's, always from the backend (never a local cache); ErrNotFound
	// for a ref of the wrong shape. It serves revocations kept while the
	// store could not be reached, which hold no token.
	LookupRef(ctx context.Context, ref Ref) (*Session, error)
	// Delete ends the token's session; no error if it is already gone.
	Delete(ctx context.Context, token string) error
	// DeleteByID ends one of the user's sessions; ErrNotFound if the user has
	// no session with that ID.
	DeleteByID(ctx context.Context, userID, sessionID string) error
	// DeleteUser ends all the user's sessions but exceptSessionID (empty: all)
	// in one atomic step and returns how many it ended.
	DeleteUser(ctx context.Context, userID string, exceptSessionID string) (int, error)
	// List returns the user's live sessions, oldest first; it reads at
	// most Options.MaxSessionsPerUser of them (the most recently used).
	List(ctx context.Context, userID string) ([]*Session, error)
	// Reauthenticate records that the browser of the user's session
	// authenticated again at at, by the RFC 8176 methods amr (empty: the
	// session's sign-in method's own): the session keeps its ID, and its
	// AuthTime and AMR change. Every instance drops what it keeps of the
	// session (OnRevoke hooks: cached tokens carry the old auth_time).
	// ErrNotFound if the user has no live session with that ID.
	Reauthenticate(ctx context.Context, userID, sessionID string, at time.Time, amr []string) error
	// SetProfile gives every live session of the user the profile p (the
	// user's, changed: a new display name), in place: each keeps its
	// token, ID and times. Every instance drops what it keeps of the
	// sessions that changed (OnRevoke hooks: a cached token carries the
	// old profile), so their next token carries p. It returns how many
	// changed; ErrInvalidSession if p breaks a limit.
	SetProfile(ctx context.Context, userID string, p Profile) (int, error)
	// OnRevoke registers fn, called with the ID of every session deleted,
	// reauthenticated or changed in place, on any instance sharing the
	// backend, until the returned function unregisters it: whatever the
	// caller keeps of that session (a minted token) is stale. fn must be
	// fast and must not call the store.
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

// Evicting is implemented by both stores: Create that also returns the IDs
// of the sessions the user's cap ended, so that a wrapper can announce
// them (events: session.revoked, reason limit).
type Evicting interface {
	CreateEvicting(ctx context.Context, s NewSession) (token string, sess *Session, evicted []string, err error)
}

var (
	_ Evicting = (*MemoryStore)(nil)
	_ Evicting = (*RedisStore)(nil)
)

// hookSet holds callbacks. Each is kept under its own key so that a
// handler that goes away (a config reload) can unregister its own without
// touching the others'.
type hookSet[F any] struct {
	mu   sync.RWMutex
	next uint64
	fns  map[uint64]F
}

func (h *hookSet[F]) add(fn F) (unregister func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fns == nil {
		h.fns = make(map[uint64]F)
	}
	h.next++
	id := h.next
	h.fns[id] = fn
	return func() {
		h.mu.Lock()
		delete(h.fns, id)
		h.mu.Unlock()
	}
}

// revokeHooks holds the callbacks registered with OnRevoke and OnRevokeAll.
type revokeHooks struct {
	one hookSet[func(sessionID string)]
	all hookSet[func()]
}

func (h *revokeHooks) onRevoke(fn func(string)) func() { return h.one.add(fn) }

func (h *revokeHooks) onRevokeAll(fn func()) func() { return h.all.add(fn) }

func (h *revokeHooks) revoked(sessionIDs ...string) {
	h.one.mu.RLock()
	defer h.one.mu.RUnlock()
	for _, id := range sessionIDs {
		for _, fn := range h.one.fns {
			fn(id)
		}
	}
}

func (h *revokeHooks) revokedAll() {
	h.all.mu.RLock()
	defer h.all.mu.RUnlock()
	for _, fn := range h.all.fns {
		fn()
	}
}
