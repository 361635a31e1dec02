package edge

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/events"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Pending revocations. A sign-out that the session store cannot take within
// the request's deadline (a failover that outlasts it, an outage) still
// ends the session: the browser's cookie is cleared, the revocation is kept
// in a RevocationJournal (Caddy's storage, which the instances share and
// which outlives a restart), this gateway refuses the session from then on,
// and the revocation is applied as soon as the store answers. Applying it
// publishes it like any revocation, so the other instances' caches drop the
// session too.

const (
	// maxPendingRevocations bounds what an outage can make the gateway keep:
	// a sign-out needs only a well-formed cookie, and one the store cannot
	// check may be random. Past it, such a sign-out answers 503 as before.
	maxPendingRevocations = 10_000
	// pendingRetryMin and pendingRetryMax: the back-off between rounds while
	// revocations are pending, so one applies within a second of the store
	// answering.
	pendingRetryMin = 100 * time.Millisecond
	pendingRetryMax = time.Second
	// pendingScanInterval is how often the journal is read when nothing is
	// pending here: for revocations another instance kept in the shared
	// storage (it may have stopped before it could apply them).
	pendingScanInterval = 5 * time.Second
	// journalTimeout bounds one journal call. The journal is Caddy's
	// storage, not the session store: it answers while the store does not.
	journalTimeout = 5 * time.Second
	// maxApplyFailuresPerRound ends a round early: with the store down each
	// attempt costs its whole deadline.
	maxApplyFailuresPerRound = 3
)

// PendingRevocation is a sign-out kept until the session store takes it.
// It holds no cookie token: a copy of the journal signs nobody in.
type PendingRevocation struct {
	// Ref names the session that signed out.
	session.Ref
	// UserID is the session's user when the gateway knew it at sign-out;
	// empty when the store could not even be asked who it was (the
	// session's record tells it once the store answers).
	UserID string `json:"user_id,omitempty"`
	// All ends every session the user had at At (sign out everywhere), not
	// just this one.
	All bool `json:"all,omitempty"`
	// At is when the user signed out.
	At time.Time `json:"at"`
}

// RevocationJournal keeps pending revocations across restarts, shared by
// the instances of a realm. caddymodule keeps it in Caddy's storage;
// NewMemoryJournal keeps it in this process (tests).
type RevocationJournal interface {
	// Put keeps r under r.SessionID, replacing what was kept there; when it
	// returns nil, r survives a restart.
	Put(ctx context.Context, r PendingRevocation) error
	// Remove forgets the revocation of sessionID; no error if there is none.
	Remove(ctx context.Context, sessionID string) error
	// List returns every revocation kept.
	List(ctx context.Context) ([]PendingRevocation, error)
}

// MemoryJournal is a RevocationJournal in this process: for tests, and for
// a Gateway configured without one.
type MemoryJournal struct {
	mu sync.Mutex
	m  map[string]PendingRevocation
}

// NewMemoryJournal returns an empty in-process journal.
func NewMemoryJournal() *MemoryJournal {
	return &MemoryJournal{m: make(map[string]PendingRevocation)}
}

// Put implements RevocationJournal.
func (j *MemoryJournal) Put(_ context.Context, r PendingRevocation) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.m[r.SessionID] = r
	return nil
}

// Remove implements RevocationJournal.
func (j *MemoryJournal) Remove(_ context.Context, sessionID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.m, sessionID)
	return nil
}

// List implements RevocationJournal.
func (j *MemoryJournal) List(context.Context) ([]PendingRevocation, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]PendingRevocation, 0, len(j.m))
	for _, r := range j.m {
		out = append(out, r)
	}
	return out, nil
}

var errTooManyPending = errors.New("too many sign-outs are waiting for the session store")

// pendingRevocations is the gateway's side of the journal: the revocations
// it refuses sessions for, and the loop that applies them.
type pendingRevocations struct {
	journal   RevocationJournal
	store     session.Store
	logger    *zap.Logger
	dropToken func(sessionID string)
	max       int // maxPendingRevocations

	// n mirrors len(bySession), so that the request path takes no lock
	// while nothing is pending.
	n atomic.Int64
	// removed counts removals: a lookup that ran across one may hold a
	// session read before its revocation was applied (findSession).
	removed atomic.Uint64
	mu      sync.Mutex
	// bySession holds every pending revocation; seq is when this process
	// learnt of it, so that a scan can tell entries it should have seen.
	bySession map[string]pendingEntry
	// allByUser: the user's pending "sign out everywhere" revocations (by
	// session ID), each refusing the sessions the user had at its At.
	allByUser map[string]map[string]time.Time
	seq       uint64

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

type pendingEntry struct {
	PendingRevocation
	seq uint64
}

func newPendingRevocations(journal RevocationJournal, store session.Store, logger *zap.Logger, dropToken func(string)) *pendingRevocations {
	return &pendingRevocations{
		journal:   journal,
		store:     store,
		logger:    logger,
		dropToken: dropToken,
		max:       maxPendingRevocations,
		bySession: make(map[string]pendingEntry),
		allByUser: make(map[string]map[string]time.Time),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

// start reads the journal, so that the sessions it names are refused from
// the first request (also after a restart), and starts applying them.
func (p *pendingRevocations) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.scan(ctx)
	go p.run(ctx)
}

// stop ends the loop; what is pending stays in the journal.
func (p *pendingRevocations) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
}

// denies reports whether sess has a pending revocation: this gateway must
// not serve it.
func (p *pendingRevocations) denies(sess *session.Session) bool {
	if p.n.Load() == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.bySession[sess.ID]; ok {
		return true
	}
	for _, at := range p.allByUser[sess.UserID] {
		if !sess.CreatedAt.After(at) {
			return true
		}
	}
	return false
}

// has reports whether sessionID has a pending revocation.
func (p *pendingRevocations) has(sessionID string) bool {
	if p.n.Load() == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.bySession[sessionID]
	return ok
}

// keep records r in the journal and refuses its session from now on.
func (p *pendingRevocations) keep(ctx context.Context, r PendingRevocation) error {
	p.mu.Lock()
	if old, ok := p.bySession[r.SessionID]; ok {
		r.All = r.All || old.All
		if r.UserID == "" {
			r.UserID = old.UserID
		}
		r.At = maxTime(r.At, old.At)
	} else if len(p.bySession) >= p.max {
		p.mu.Unlock()
		return errTooManyPending
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalTimeout)
	defer cancel()
	if err := p.journal.Put(ctx, r); err != nil {
		return err
	}
	p.mu.Lock()
	p.addLocked(r)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

func (p *pendingRevocations) addLocked(r PendingRevocation) {
	p.seq++
	if old, ok := p.bySession[r.SessionID]; ok {
		p.removeLocked(old.PendingRevocation)
	}
	p.bySession[r.SessionID] = pendingEntry{r, p.seq}
	if r.All && r.UserID != "" {
		m := p.allByUser[r.UserID]
		if m == nil {
			m = make(map[string]time.Time)
			p.allByUser[r.UserID] = m
		}
		m[r.SessionID] = r.At
	}
	p.n.Store(int64(len(p.bySession)))
}

func (p *pendingRevocations) removeLocked(r PendingRevocation) {
	p.removed.Add(1)
	delete(p.bySession, r.SessionID)
	if m := p.allByUser[r.UserID]; m != nil {
		delete(m, r.SessionID)
		if len(m) == 0 {
			delete(p.allByUser, r.UserID)
		}
	}
	p.n.Store(int64(len(p.bySession)))
}

// scan reads the journal: revocations another instance kept are refused
// here too, and those no longer in it (applied elsewhere) are forgotten.
func (p *pendingRevocations) scan(ctx context.Context) {
	p.mu.Lock()
	before := p.seq
	p.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, journalTimeout)
	defer cancel()
	list, err := p.journal.List(lctx)
	if err != nil {
		p.logger.Warn("reading the sign-outs kept for the session store failed; retrying", zap.Error(err))
		return
	}
	listed := make(map[string]bool, len(list))
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range list {
		if !r.Valid() {
			continue
		}
		listed[r.SessionID] = true
		if old, ok := p.bySession[r.SessionID]; !ok || old.All != r.All || old.UserID != r.UserID {
			p.addLocked(r)
		}
	}
	for id, e := range p.bySession {
		if !listed[id] && e.seq <= before {
			p.removeLocked(e.PendingRevocation)
		}
	}
}

func (p *pendingRevocations) run(ctx context.Context) {
	defer close(p.done)
	wait := pendingRetryMin
	for {
		next := pendingScanInterval
		if p.n.Load() > 0 {
			if p.applyAll(ctx) {
				wait = pendingRetryMin
			}
			if p.n.Load() > 0 {
				next = wait
				wait = min(2*wait, pendingRetryMax)
			}
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.wake:
			t.Stop()
		case <-t.C:
		}
		p.scan(ctx)
	}
}

// applyAll tries each pending revocation once and reports whether any was
// applied.
func (p *pendingRevocations) applyAll(ctx context.Context) (progress bool) {
	p.mu.Lock()
	todo := slices.Collect(maps.Values(p.bySession))
	p.mu.Unlock()
	failures := 0
	for _, e := range todo {
		r := e.PendingRevocation
		if ctx.Err() != nil {
			return progress
		}
		ended, err := p.apply(ctx, r)
		if err != nil {
			if failures++; failures >= maxApplyFailuresPerRound {
				return progress
			}
			continue
		}
		jctx, cancel := context.WithTimeout(ctx, journalTimeout)
		err = p.journal.Remove(jctx, r.SessionID)
		cancel()
		if err != nil {
			p.logger.Warn("a sign-out kept for the session store was applied but could not be removed from Caddy's storage; it will be applied again (harmless)", zap.Error(err))
			continue
		}
		p.mu.Lock()
		if cur, ok := p.bySession[r.SessionID]; ok && cur.seq == e.seq {
			p.removeLocked(r)
		}
		p.mu.Unlock()
		progress = true
		p.logger.Info("applied a sign-out kept while the session store could not be reached",
			zap.String("session_id", r.SessionID), zap.String("user_id", r.UserID), zap.Bool("all", r.All),
			zap.Int("sessions_ended", ended), zap.Duration("after", time.Since(r.At).Round(time.Millisecond)))
	}
	return progress
}

// apply ends what r names: its session, or every session its user had at
// r.At. A session already gone counts as ended.
func (p *pendingRevocations) apply(ctx context.Context, r PendingRevocation) (ended int, err error) {
	ctx, cancel := context.WithTimeout(ctx, httprule.StoreCallTimeout)
	defer cancel()
	ctx = events.WithReason(ctx, events.ReasonSignOut)
	userID := r.UserID
	if userID == "" {
		sess, err := p.store.LookupRef(ctx, r.Ref)
		if errors.Is(err, session.ErrNotFound) {
			if r.All {
				p.logger.Warn("a kept sign-out-everywhere could not end the user's other sessions: the session that asked for it is gone from the store, so its user is unknown",
					zap.String("session_id", r.SessionID))
			}
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		userID = sess.UserID
	}
	ids := []string{r.SessionID}
	if r.All {
		list, err := p.store.List(ctx, userID)
		if err != nil {
			return 0, err
		}
		for _, s := range list {
			if s.ID != r.SessionID && !s.CreatedAt.After(r.At) {
				ids = append(ids, s.ID)
			}
		}
	}
	for _, id := range ids {
		switch err := p.store.DeleteByID(ctx, userID, id); {
		case errors.Is(err, session.ErrNotFound):
		case err != nil:
			return ended, err
		default:
			ended++
		}
		p.dropToken(id)
	}
	return ended, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
