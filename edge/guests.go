package edge

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// guestPolicy keeps a guest in use from expiring: every token minted for
// a guest's session (minutes apart, not per request) moves the guest's
// expiry to ttl from now. A guest the store no longer has was unused for
// ttl: its sessions end with it.
type guestPolicy struct {
	users session.UserStore
	ttl   time.Duration
}

// errGuestGone means the session belongs to a guest that has expired.
var errGuestGone = errors.New("the guest this session belonged to was removed after going unused")

// touchGuest runs before a token is minted for sess.
func (g *Gateway) touchGuest(sess *session.Session) error {
	if g.guests == nil || sess.Provider != signin.ProviderAnonymous {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), httprule.StoreCallTimeout)
	defer cancel()
	err := g.guests.users.TouchUser(ctx, sess.UserID, g.guests.ttl)
	switch {
	case errors.Is(err, session.ErrNotFound):
		if _, derr := g.cfg.Store.DeleteUser(ctx, sess.UserID, ""); derr != nil {
			g.storeErrLog.Warn("an expired guest's sessions could not be ended", derr)
		}
		g.cfg.Logger.Info("expired guest signed out", zap.String("user_id", sess.UserID), zap.String("session_id", sess.ID))
		return errGuestGone
	case err != nil:
		// The session itself was just found: serve it, and touch next time.
		g.storeErrLog.Warn("a guest's expiry could not be moved", err)
	}
	return nil
}
