package account

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// serveEndSession signs out one of the user's sessions (field id) or all
// but this one (field others=1), which also forgets every other browser.
func (p *Pages) serveEndSession(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.readForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	if r.PostForm.Get("others") == "1" {
		n, err := p.cfg.Sessions.DeleteUser(ctx, sess.UserID, sess.ID)
		if err != nil {
			p.logger.Warn("signing out other sessions could not reach the store", zap.Error(err))
			p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
			return
		}
		// The other browsers are forgotten too: none stays exempt from the
		// password lockout.
		p.signIn.ForgetDevices(ctx, w, r, sess.UserID)
		p.logger.Info("signed out other sessions", zap.String("user_id", sess.UserID), zap.Int("sessions", n))
		back(w, r, "notice", "signed_out_others")
		return
	}
	id := r.PostForm.Get("id")
	err := p.cfg.Sessions.DeleteByID(ctx, sess.UserID, id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		p.fail(w, r, http.StatusNotFound, "unknown_session")
		return
	case err != nil:
		p.logger.Warn("signing out a session could not reach the store", zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("signed out a session", zap.String("user_id", sess.UserID), zap.String("session_id", id))
	if id == sess.ID {
		signin.Redirect(w, r, signin.PathSignIn)
		return
	}
	back(w, r, "notice", "signed_out")
}
