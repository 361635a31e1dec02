package account

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// serveDelete: GET is the confirmation page, saying what deleting
// removes, with the final button; POST removes the user, its accounts and
// sessions. Deleting needs a recent authentication (reauthenticated): the
// password (field password) or a sign-in within ReauthWindow; a guest
// needs neither.
func (p *Pages) serveDelete(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		sess, ok := p.session(w, r)
		if ok {
			p.render(w, r, http.StatusOK, sess, "delete", r.URL.Query().Get("error"), "")
		}
		return
	}
	sess, ok := p.readForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, accounts, ok := p.userAndAccounts(ctx, w, r, sess, "delete")
	if !ok || !p.reauthenticated(ctx, w, r, sess, user, accounts, "reauth", "delete") {
		return
	}
	if err := p.cfg.Users.PurgeUser(ctx, user.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
		p.logger.Warn("account deletion could not reach the store", zap.Error(err))
		p.failTo(w, r, http.StatusServiceUnavailable, "unavailable", "delete")
		return
	}
	p.logger.Info("account deleted", zap.String("user_id", user.ID))
	d := p.frame()
	d.Mode = "deleted"
	p.write(w, r, http.StatusOK, d)
}
