package account

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// serveDelete removes the user, its accounts and sessions. It needs a
// recent authentication (reauthenticated): the password (field password)
// or a sign-in within ReauthWindow; a guest needs neither.
func (p *Pages) serveDelete(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.readForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, accounts, ok := p.userAndAccounts(ctx, w, r, sess)
	if !ok || !p.reauthenticated(ctx, w, r, sess, user, accounts, "reauth") {
		return
	}
	if err := p.cfg.Users.PurgeUser(ctx, user.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
		p.logger.Warn("account deletion could not reach the store", zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("account deleted", zap.String("user_id", user.ID))
	p.write(w, r, http.StatusOK, PageData{Site: p.signIn.Site(), Mode: "deleted", SignInURL: signin.PathSignIn})
}
