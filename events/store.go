package events

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/tracing"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Backend is what the emitting store wraps: both stores implement it.
// Methods added to these interfaces pass through unchanged; an operation
// that should send an event gets a method on Store (see Emit).
type Backend interface {
	session.Store
	session.Evicting
	session.UserStore
	session.Banner
	session.AccountSecretSetter
	session.Limiter
	session.Devices
	session.UserImporter
	session.SecondFactors
}

// emitTimeout bounds queueing one event, apart from the request's own
// deadline: the store change is done, so its event is queued even if the
// client went away.
const emitTimeout = 2 * time.Second

// Store wraps a Backend and queues an event for each change it makes.
// Queueing follows the change: if the queue fails right then, the event is
// lost (logged, and counted through OnLost).
type Store struct {
	Backend
	build  Builder
	queue  Queue
	logger *zap.Logger
	onLost func()
}

// NewStore wraps b, queueing realm's events in q. onLost, if set, counts
// events that could not be queued.
func NewStore(b Backend, realm string, q Queue, logger *zap.Logger, onLost func()) *Store {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Store{Backend: b, build: Builder{Realm: realm}, queue: q, logger: logger, onLost: onLost}
}

// Builder makes this realm's events, for Emit.
func (s *Store) Builder() Builder { return s.build }

// Emit queues ev. Operations added later (ban, purge) call it after their
// change succeeded.
func (s *Store) Emit(ctx context.Context, ev Event) {
	if ev.TraceParent == "" {
		ev.TraceParent = tracing.Handoff(ctx)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), emitTimeout)
	defer cancel()
	if err := s.queue.Enqueue(ctx, ev); err != nil {
		s.logger.Error("events: an event could not be queued and is lost",
			zap.String("event_id", ev.ID), zap.String("user_id", ev.Key), zap.Error(err))
		if s.onLost != nil {
			s.onLost()
		}
	}
}

// SetBanned implements session.Banner: user.banned (banned false:
// unbanned), once the mark is stored.
func (s *Store) SetBanned(ctx context.Context, userID string, banned bool) (*session.User, error) {
	u, err := s.Backend.SetBanned(ctx, userID, banned)
	if err == nil {
		s.Emit(ctx, s.build.UserBanned(userID, banned))
	}
	return u, err
}

// Create implements session.Store: session.created, and session.revoked
// (reason limit) for each session of the user's that the cap ended.
func (s *Store) Create(ctx context.Context, n session.NewSession) (string, *session.Session, error) {
	token, sess, _, err := s.CreateEvicting(ctx, n)
	return token, sess, err
}

// CreateEvicting implements session.Evicting, as Create.
func (s *Store) CreateEvicting(ctx context.Context, n session.NewSession) (string, *session.Session, []string, error) {
	token, sess, evicted, err := s.Backend.CreateEvicting(ctx, n)
	if err != nil {
		return token, sess, evicted, err
	}
	for _, id := range evicted {
		s.Emit(ctx, s.build.SessionRevoked(id, n.UserID, ReasonLimit))
	}
	s.Emit(ctx, s.build.SessionCreated(sess, replacedUserFrom(ctx)))
	return token, sess, evicted, nil
}

// Lookup implements session.Store: session.revoked expired-noticed when the
// store found the session and saw it had ended.
func (s *Store) Lookup(ctx context.Context, token string) (*session.Session, error) {
	sess, err := s.Backend.Lookup(ctx, token)
	var ended *session.EndedError
	if errors.As(err, &ended) && ended.Session != nil {
		s.Emit(ctx, s.build.SessionRevoked(ended.Session.ID, ended.Session.UserID, ReasonExpiredNoticed))
	}
	return sess, err
}

// Delete implements session.Store: session.revoked, with the context's
// reason (default sign-out: the token is the browser's own).
func (s *Store) Delete(ctx context.Context, token string) error {
	sess := sessionFrom(ctx)
	if sess == nil {
		if found, err := s.Backend.Lookup(ctx, token); err == nil {
			sess = found
		}
	}
	if err := s.Backend.Delete(ctx, token); err != nil {
		return err
	}
	if sess != nil {
		s.Emit(ctx, s.build.SessionRevoked(sess.ID, sess.UserID, reasonFrom(ctx, ReasonSignOut)))
	}
	return nil
}

// DeleteByID implements session.Store: session.revoked, with the
// context's reason (default admin).
func (s *Store) DeleteByID(ctx context.Context, userID, sessionID string) error {
	if err := s.Backend.DeleteByID(ctx, userID, sessionID); err != nil {
		return err
	}
	s.Emit(ctx, s.build.SessionRevoked(sessionID, userID, reasonFrom(ctx, ReasonAdmin)))
	return nil
}

// DeleteUser implements session.Store: session.revoked for each session
// ended, with the context's reason (default admin). The sessions are
// listed first: one started between the list and the delete ends without
// an event.
func (s *Store) DeleteUser(ctx context.Context, userID, exceptSessionID string) (int, error) {
	listed, listErr := s.Backend.List(ctx, userID)
	n, err := s.Backend.DeleteUser(ctx, userID, exceptSessionID)
	if err != nil || n == 0 {
		return n, err
	}
	if listErr != nil {
		s.logger.Warn("events: sessions ended without session.revoked events: listing them failed",
			zap.String("user_id", userID), zap.Int("sessions", n), zap.Error(listErr))
	}
	reason := reasonFrom(ctx, ReasonAdmin)
	for _, sess := range listed {
		if sess.ID != exceptSessionID {
			s.Emit(ctx, s.build.SessionRevoked(sess.ID, userID, reason))
		}
	}
	return n, nil
}

// CreateUser implements session.UserStore: user.created.
func (s *Store) CreateUser(ctx context.Context, n session.NewUser) (*session.User, error) {
	u, err := s.Backend.CreateUser(ctx, n)
	if err == nil {
		s.Emit(ctx, s.build.UserCreated(UserOf(u)))
	}
	return u, err
}

// UpdateUser implements session.UserStore: user.updated.
func (s *Store) UpdateUser(ctx context.Context, u *session.User) error {
	if err := s.Backend.UpdateUser(ctx, u); err != nil {
		return err
	}
	s.Emit(ctx, s.build.UserUpdated(UserOf(u)))
	return nil
}

// UserChanged implements session.ChangeRecorder: user.updated with the
// user as stored now and the changes.
func (s *Store) UserChanged(ctx context.Context, userID string, changes ...session.UserChange) {
	u, err := s.Backend.GetUser(ctx, userID)
	if err != nil {
		s.logger.Warn("events: user.updated for a change of sign-in methods is lost: the user could not be read",
			zap.String("user_id", userID), zap.Error(err))
		if s.onLost != nil {
			s.onLost()
		}
		return
	}
	s.Emit(ctx, s.build.UserUpdated(UserOf(u), changes...))
}

var _ session.ChangeRecorder = (*Store)(nil)

// ImportUser implements session.UserImporter: with opts.Events, user.created
// or user.updated marked imported, once the user is written. An import
// sends nothing unless asked: the app has its users already.
func (s *Store) ImportUser(ctx context.Context, in session.ImportedUser, opts session.ImportOptions) (session.ImportResult, error) {
	res, err := s.Backend.ImportUser(ctx, in, opts)
	if err != nil || !opts.Events || opts.DryRun || res == session.ImportUnchanged {
		return res, err
	}
	u, gerr := s.Backend.GetUser(ctx, in.ID)
	if gerr != nil {
		s.logger.Warn("events: an imported user was not announced: reading it back failed",
			zap.String("user_id", in.ID), zap.Error(gerr))
		return res, nil
	}
	data := UserOf(u)
	data.Imported = true
	if res == session.ImportCreated {
		s.Emit(ctx, s.build.UserCreated(data))
	} else {
		s.Emit(ctx, s.build.UserUpdated(data))
	}
	return res, nil
}

// RemoveUser implements session.UserStore: user.deleted, when there was a
// user to remove.
func (s *Store) RemoveUser(ctx context.Context, userID string) error {
	_, getErr := s.Backend.GetUser(ctx, userID)
	if err := s.Backend.RemoveUser(ctx, userID); err != nil {
		return err
	}
	if !errors.Is(getErr, session.ErrNotFound) {
		s.Emit(ctx, s.build.UserDeleted(userID))
	}
	return nil
}

// PurgeUser implements session.UserStore: session.revoked for each of the
// user's sessions (the context's reason, default user-deleted), then
// user.deleted. The sessions are listed first, as DeleteUser does.
func (s *Store) PurgeUser(ctx context.Context, userID string) error {
	listed, listErr := s.Backend.List(ctx, userID)
	if err := s.Backend.PurgeUser(ctx, userID); err != nil {
		return err
	}
	if listErr != nil {
		s.logger.Warn("events: sessions ended without session.revoked events: listing them failed",
			zap.String("user_id", userID), zap.Error(listErr))
	}
	reason := reasonFrom(ctx, ReasonUserDeleted)
	for _, sess := range listed {
		s.Emit(ctx, s.build.SessionRevoked(sess.ID, userID, reason))
	}
	s.Emit(ctx, s.build.UserDeleted(userID))
	return nil
}

// Context values: the caller of a store change says why.
type ctxKey int

const (
	sessionKey ctxKey = iota
	replacedKey
)

// WithReason says why the sessions this context's store calls end; it is
// session.WithRevokeReason, typed.
func WithReason(ctx context.Context, r Reason) context.Context {
	return session.WithRevokeReason(ctx, string(r))
}

func reasonFrom(ctx context.Context, def Reason) Reason {
	if r := session.RevokeReason(ctx); r != "" {
		return Reason(r)
	}
	return def
}

// WithSession names the session a Delete(token) ends, when the caller has
// looked it up already (saves the store a lookup).
func WithSession(ctx context.Context, sess *session.Session) context.Context {
	return context.WithValue(ctx, sessionKey, sess)
}

func sessionFrom(ctx context.Context) *session.Session {
	s, _ := ctx.Value(sessionKey).(*session.Session)
	return s
}

// WithReplacedUser says that the session this context creates completes a
// guest's sign-in as an existing user: session.created names the guest's
// user ID, so the app can move that user's data.
func WithReplacedUser(ctx context.Context, guestUserID string) context.Context {
	return context.WithValue(ctx, replacedKey, guestUserID)
}

func replacedUserFrom(ctx context.Context) string {
	s, _ := ctx.Value(replacedKey).(string)
	return s
}

// MaxDeadLettersListed bounds one dead-letter listing.
const MaxDeadLettersListed = 1000

// DeadLettersHandler answers GET with {"dead": [...]}, newest first;
// ?limit=n (default 100, at most MaxDeadLettersListed). For the admin API
// to mount (e.g. GET /convex-auth/events/dead); it checks no credentials.
func DeadLettersHandler(q Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "method_not_allowed", "message": "list dead letters with GET"})
			return
		}
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "bad_limit", "message": "limit must be a positive number"})
				return
			}
			limit = min(n, MaxDeadLettersListed)
		}
		dead, err := q.DeadLetters(r.Context(), limit)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "queue_unavailable", "message": "the event queue cannot be read right now: try again shortly"})
			return
		}
		if dead == nil {
			dead = []DeadLetter{}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"dead": dead})
	})
}
