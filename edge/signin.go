package edge

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/events"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
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
	_, err := s.g.cfg.Store.Lookup(ctx, token)
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
	sess, err := s.g.cfg.Store.Lookup(ctx, token)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	return sess, err
}

func (s signInHost) SameOrigin(r *http.Request) bool { return s.g.sameOrigin(r) }

// StartSession replaces the request's session, if any, with a new one
// for user: a new session ID at every sign-in. The old session's
// session.revoked says sign-out. A guest's sign-in as an existing user sets
// events.WithReplacedUser on r's context, so session.created names the
// guest.
func (s signInHost) StartSession(w http.ResponseWriter, r *http.Request, user *session.User, provider string) error {
	g := s.g
	cs := g.cfg.Cookie.forRequest(r)
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
	defer cancel()
	if old, ok := readCookie(r, cs.name); ok {
		sess, err := g.cfg.Store.Lookup(ctx, old)
		if err == nil {
			dctx := events.WithReason(events.WithSession(ctx, sess), events.ReasonSignIn)
			if err := g.cfg.Store.Delete(dctx, old); err != nil {
				return err
			}
			g.tokens.drop(sess.ID)
		}
	}
	token, sess, err := g.cfg.Store.Create(ctx, session.NewSession{UserID: user.ID, Provider: provider, Profile: user.Profile})
	if err != nil {
		return err
	}
	http.SetCookie(w, cs.set(token, sess.ExpiresAt))
	g.cfg.Logger.Info("signed in", zap.String("user_id", user.ID), zap.String("session_id", sess.ID), zap.String("provider", provider))
	return nil
}
