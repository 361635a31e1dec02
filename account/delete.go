package account

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// serveDelete removes the user, its accounts and sessions. It needs the
// password (field password) or a sign-in within ReauthWindow; a guest
// needs neither.
func (p *Pages) serveDelete(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.readForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	if errors.Is(err, session.ErrNotFound) {
		p.render(w, r, http.StatusNotFound, sess, "app_managed", "")
		return
	}
	var accounts []session.Account
	if err == nil {
		accounts, err = p.cfg.Users.AccountsOf(ctx, sess.UserID)
	}
	if err != nil {
		p.logger.Warn("account deletion could not reach the store", zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	allowed := user.Anonymous || p.cfg.Now().Sub(sess.CreatedAt) < ReauthWindow
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
			p.render(w, r, http.StatusServiceUnavailable, sess, "unavailable", "")
			return
		case signin.PasswordLocked:
			p.render(w, r, http.StatusTooManyRequests, sess, "too_many_attempts", "")
			return
		default:
			p.render(w, r, http.StatusUnauthorized, sess, "credentials", "")
			return
		}
	}
	if !allowed {
		p.render(w, r, http.StatusForbidden, sess, "reauth", "")
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
