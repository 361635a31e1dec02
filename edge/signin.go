package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/events"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// signInHost lets the sign-in service use the gateway's session cookie.
type signInHost struct{ g *Gateway }

func (s signInHost) SignedIn(r *http.Request) (bool, error) {
	token, ok := readCookie(r, s.g.cfg.Cookie.forRequest(r).name)
	if !ok {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
	defer cancel()
	_, err := s.g.findSession(ctx, token)
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s signInHost) Session(r *http.Request) (*session.Session, error) {
	token, ok := readCookie(r, s.g.cfg.Cookie.forRequest(r).name)
	if !ok {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
	defer cancel()
	sess, err := s.g.findSession(ctx, token)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	return sess, err
}

func (s signInHost) SameOrigin(r *http.Request) bool { return s.g.sameOrigin(r) }

// StartSession replaces the request's session, if any, with a new one
// for user: a new session ID at every sign-in. The old session's
// session.revoked says sign-out. When a guest signs in as an existing user,
// session.created names the guest (events.WithReplacedUser), so the app can
// move the guest's data.
func (s signInHost) StartSession(w http.ResponseWriter, r *http.Request, res signin.Result) error {
	user, provider := res.User, res.Provider
	g := s.g
	cs := g.cfg.Cookie.forRequest(r)
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
	defer cancel()
	if old, ok := readCookie(r, cs.name); ok {
		sess, err := g.findSession(ctx, old)
		if err == nil {
			dctx := events.WithReason(events.WithSession(ctx, sess), events.ReasonSignIn)
			if err := g.cfg.Store.Delete(dctx, old); err != nil {
				return err
			}
			g.tokens.drop(sess.ID)
		}
	}
	if res.ReplacedUserID != "" {
		ctx = events.WithReplacedUser(ctx, res.ReplacedUserID)
	}
	token, sess, err := g.cfg.Store.Create(ctx, session.NewSession{UserID: user.ID, Provider: provider, Profile: user.Profile,
		UserAgent: r.Header.Get("User-Agent"), MaxTTL: res.MaxTTL, AMR: res.AMR})
	if err != nil {
		return err
	}
	if err := g.refuseBanned(ctx, user.ID, token); err != nil {
		return err
	}
	http.SetCookie(w, cs.set(token, sess.ExpiresAt))
	fields := []zap.Field{zap.String("user_id", user.ID), zap.String("session_id", sess.ID), zap.String("provider", provider)}
	if res.UpgradedGuest {
		fields = append(fields, zap.Bool("upgraded_guest", true))
	}
	if res.ReplacedUserID != "" {
		fields = append(fields, zap.String("replaced_user_id", res.ReplacedUserID))
	}
	g.cfg.Logger.Info("signed in", fields...)
	return nil
}

// refuseBanned ends the session just created with token when its user is
// banned, and then returns an error wrapping signin.ErrBanned. A ban marks
// the user before it ends the user's sessions, and a sign-in creates its
// session before it reads the mark, so one of the two always sees the
// other: no session outlives a ban. A user without a record (an upstream
// sign-in of the app's own ID) is not banned.
func (g *Gateway) refuseBanned(ctx context.Context, userID, token string) error {
	if g.cfg.Users == nil {
		return nil
	}
	u, err := g.cfg.Users.GetUser(ctx, userID)
	if errors.Is(err, session.ErrNotFound) || (err == nil && !u.Banned) {
		return nil
	}
	// Banned, or the mark could not be read: fail closed.
	if derr := g.cfg.Store.Delete(ctx, token); derr != nil {
		return fmt.Errorf("ending a new session whose user is banned or unreadable: %w", derr)
	}
	if err != nil {
		return fmt.Errorf("reading whether the user is banned: %w", err)
	}
	return fmt.Errorf("user %s: %w", userID, signin.ErrBanned)
}
