package account

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// serveDelete: GET is the confirmation page, saying what deleting
// removes, with the final button; POST removes the user, its accounts and
// sessions. Deleting needs the password (field password) or a sign-in
// within ReauthWindow; a guest needs neither.
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
	fail := func(status int, code string) { p.failTo(w, r, status, code, "delete") }
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	if errors.Is(err, session.ErrNotFound) {
		fail(http.StatusNotFound, "app_managed")
		return
	}
	var accounts []session.Account
	if err == nil {
		accounts, err = p.cfg.Users.AccountsOf(ctx, sess.UserID)
	}
	if err != nil {
		p.logger.Warn("account deletion could not reach the store", zap.Error(err))
		fail(http.StatusServiceUnavailable, "unavailable")
		return
	}
	allowed := p.recentSignIn(user, sess)
	if password := r.PostForm.Get("password"); !allowed && password != "" {
		var pw *session.Account
		for i := range accounts {
			if accounts[i].Provider == signin.ProviderPassword {
				pw = &accounts[i]
			}
		}
		switch p.signIn.CheckPassword(ctx, pw, password) {
		case signin.PasswordMatches:
			allowed = true
		case signin.PasswordUnavailable:
			fail(http.StatusServiceUnavailable, "unavailable")
			return
		case signin.PasswordLocked:
			fail(http.StatusTooManyRequests, "too_many_attempts")
			return
		default:
			fail(http.StatusUnauthorized, "credentials")
			return
		}
	}
	if !allowed {
		fail(http.StatusForbidden, "reauth")
		return
	}
	if err := p.cfg.Users.PurgeUser(ctx, user.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
		p.logger.Warn("account deletion could not reach the store", zap.Error(err))
		fail(http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("account deleted", zap.String("user_id", user.ID))
	d := p.frame()
	d.Mode = "deleted"
	p.write(w, r, http.StatusOK, d)
}

// recentSignIn reports whether sess's user may delete the account without
// its password: a guest, or a sign-in within ReauthWindow.
func (p *Pages) recentSignIn(user *session.User, sess *session.Session) bool {
	return user.Anonymous || p.cfg.Now().Sub(sess.CreatedAt) < ReauthWindow
}
