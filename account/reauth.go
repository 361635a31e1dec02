package account

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// Changing how one signs in (linking or unlinking a method) and deleting
// the account need a recent authentication in this browser's session: its
// AuthTime within ReauthWindow (a sign-in, or a re-authentication), or the
// password typed into the form on the spot, which re-authenticates the
// session. A guest has nothing to protect yet and needs neither.

// reauthenticated reports whether sess may make a change that needs a
// recent authentication, checking the form's password field when the
// last one is older than ReauthWindow. On false it has answered, for the
// page in mode (account, delete): refusal is the error code when there was
// no password to check.
func (p *Pages) reauthenticated(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *session.Session, user *session.User, accounts []session.Account, refusal, mode string) bool {
	if user.Anonymous || p.recent(sess) {
		return true
	}
	if r.PostForm.Get("password") == "" {
		p.failTo(w, r, http.StatusForbidden, refusal, mode)
		return false
	}
	return p.passwordReauth(ctx, w, r, sess, accounts, mode)
}

// passwordReauth checks the form's password field against the user's
// password account (counted as a sign-in attempt is) and, once the user
// has a second factor, its code field too; when they match, it
// re-authenticates the session (signin.Service's
// ReauthenticateWithPassword, as the step-up page does). On false it has
// answered, for the page in mode.
func (p *Pages) passwordReauth(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *session.Session, accounts []session.Account, mode string) bool {
	check, refusal, err := p.signIn.ReauthenticateWithPassword(ctx, r, sess, accounts, r.PostForm.Get("password"), r.PostForm.Get("code"))
	if status, code := signin.ReauthAnswer(check, refusal); status != 0 {
		p.failTo(w, r, status, code, mode)
		return false
	}
	if err != nil {
		// Password and factor proved it now; the change on hand may go on.
		p.logger.Warn("a re-authentication could not be recorded on the session", zap.Error(err))
	}
	return true
}

// serveReauth handles POST /auth/account/reauth (field password): the
// password re-authenticates the session, so that for ReauthWindow the
// account page's changes need it no more.
func (p *Pages) serveReauth(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.readForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	_, accounts, ok := p.userAndAccounts(ctx, w, r, sess, "account")
	if !ok {
		return
	}
	if r.PostForm.Get("password") == "" {
		p.fail(w, r, http.StatusBadRequest, "credentials")
		return
	}
	if !p.passwordReauth(ctx, w, r, sess, accounts, "account") {
		return
	}
	p.logger.Info("re-authenticated with the password", zap.String("user_id", sess.UserID))
	back(w, r, "notice", "reauthenticated")
}

// userAndAccounts reads sess's user and its accounts; on failure it has
// answered, for the page in mode (app_managed: the app signed this user
// in).
func (p *Pages) userAndAccounts(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *session.Session, mode string) (*session.User, []session.Account, bool) {
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	if err == nil {
		var accounts []session.Account
		if accounts, err = p.cfg.Users.AccountsOf(ctx, sess.UserID); err == nil {
			return user, accounts, true
		}
	}
	if errors.Is(err, session.ErrNotFound) {
		p.failTo(w, r, http.StatusNotFound, "app_managed", mode)
		return nil, nil, false
	}
	p.logger.Warn("the account page could not reach the store", zap.Error(err))
	p.failTo(w, r, http.StatusServiceUnavailable, "unavailable", mode)
	return nil, nil, false
}
