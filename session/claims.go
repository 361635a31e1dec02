package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ClaimsStore keeps what the claims cache (package authz) shares between
// instances: each session's last result of the app's claims query and its
// context (the active organization), each user's claims generation (a
// refresh starts a new one, and results of an older one are no result),
// and a short lease per session that lets one instance at a time ask the
// app. Both stores implement it.
type ClaimsStore interface {
	// LoadClaims returns the session's claims state.
	LoadClaims(ctx context.Context, userID, sessionID string) (ClaimsState, error)
	// SaveClaims keeps rec as the session's result for keep, unless the
	// user's generation is no longer rec.Generation (a refresh came in
	// between): then it keeps nothing and returns false.
	SaveClaims(ctx context.Context, userID, sessionID string, rec ClaimsRecord, keep time.Duration) (bool, error)
	// LeaseClaims takes the session's lease for d, the right to call the
	// query: it returns the lease's ID, or "" while another holds it.
	LeaseClaims(ctx context.Context, userID, sessionID string, d time.Duration) (string, error)
	// ReleaseClaims gives back the lease, if lease still holds it.
	ReleaseClaims(ctx context.Context, userID, sessionID, lease string) error
	// SetClaimsContext stores the session's context until until (its
	// absolute expiry) and, in the same step, rec as its result (unless a
	// refresh came in between), and tells every instance that the
	// session's claims changed. sessionContext is a JSON object of at most
	// MaxClaimsContextBytes.
	SetClaimsContext(ctx context.Context, userID, sessionID string, sessionContext []byte, until time.Time, rec ClaimsRecord, keep time.Duration) error
	// RefreshClaims starts a new generation of the user's claims, so that
	// every result kept so far is stale, and tells every instance
	// (OnClaimsChange) within a second. keep is the longest a result is
	// kept (SaveClaims).
	RefreshClaims(ctx context.Context, userID string, keep time.Duration) error
	// OnClaimsChange registers fn, called on every instance sharing the
	// backend with the user whose claims were refreshed (sessionID empty)
	// or the session whose context changed (userID empty), until the
	// returned function unregisters it. fn must be fast and must not call
	// the store. Missed changes are told as OnRevokeAll's are.
	OnClaimsChange(fn func(userID, sessionID string)) (unregister func())
	// ClaimsChangesLive reports whether changes made on other instances
	// reach this one now; while they do not, what an instance keeps of
	// claims must not be served.
	ClaimsChangesLive() bool
}

var (
	_ ClaimsStore = (*MemoryStore)(nil)
	_ ClaimsStore = (*RedisStore)(nil)
)

// MaxClaimsContextBytes bounds a session's stored context.
const MaxClaimsContextBytes = 1024

// ClaimsRecord is one result of the claims query.
type ClaimsRecord struct {
	// Claims is the JSON object the query returned (checked by the
	// caller), or "{}".
	Claims []byte
	// FetchedAt is when the query answered.
	FetchedAt time.Time
	// Generation is the user's claims generation when the call began
	// (ClaimsState.Generation).
	Generation uint64
}

// ClaimsState is what the store holds of one session's claims.
type ClaimsState struct {
	// Record is the session's last result, nil when there is none of the
	// current generation.
	Record *ClaimsRecord
	// Generation is the user's current claims generation.
	Generation uint64
	// Context is the session's stored context (a JSON object), nil when
	// none was set.
	Context []byte
}

// ErrInvalidClaims wraps a claims record or context the store refuses.
var ErrInvalidClaims = errors.New("session: invalid claims record")

func checkClaimsInput(userID, sessionID string, sessionContext []byte) error {
	switch {
	case userID == "":
		return fmt.Errorf("%w: user ID is empty", ErrInvalidClaims)
	case !validSessionID(sessionID):
		return fmt.Errorf("%w: %q is not a session ID", ErrInvalidClaims, sessionID)
	case len(sessionContext) > MaxClaimsContextBytes:
		return fmt.Errorf("%w: the context is %d bytes, the limit is %d", ErrInvalidClaims, len(sessionContext), MaxClaimsContextBytes)
	case sessionContext != nil && !json.Valid(sessionContext):
		return fmt.Errorf("%w: the context is not JSON", ErrInvalidClaims)
	}
	return nil
}

// claimsHooks holds the callbacks registered with OnClaimsChange.
type claimsHooks struct {
	hookSet[func(userID, sessionID string)]
}

func (h *claimsHooks) changed(userID, sessionID string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, fn := range h.fns {
		fn(userID, sessionID)
	}
}
