package account

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// serveChangePassword handles POST /auth/password/change from the account
// page: current, password, confirm. Signed-in users only, same origin.
// A refusal shows the sign-in page's change-password form with the reason
// (GET /auth/password/change, where a refused post from a page returns).
func (p *Pages) serveChangePassword(w http.ResponseWriter, r *http.Request) {
	s := p.signIn
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if _, ok := p.session(w, r); ok {
			s.Render(w, r, http.StatusOK, s.Page(r, "change_password", r.URL.Query().Get("error")))
		}
		return
	}
	if !s.ReadForm(w, r) {
		return
	}
	again := func(status int, code string) {
		s.FailForm(w, r, code, signin.FormBack{Path: signin.PathChangePassword}, func() {
			s.Render(w, r, status, s.Page(r, "change_password", code))
		})
	}
	sess, err := p.cfg.Host.Session(r)
	if err != nil {
		p.logger.Warn("password change could not reach the session store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	if sess == nil {
		back := signin.FormBack{Path: signin.PathSignIn, Query: url.Values{"redirectTo": {signin.PathAccount}}}
		s.FailForm(w, r, "signed_out", back, func() {
			s.Render(w, r, http.StatusUnauthorized, s.PageFor("signin", "signed_out", signin.PathAccount))
		})
		return
	}
	password := r.PostForm.Get("password")
	if problem := s.NewPasswordProblem(password, r.PostForm.Get("confirm")); problem != "" {
		again(http.StatusBadRequest, problem)
		return
	}
	current := r.PostForm.Get("current")
	if len(current) > signin.MaxPasswordLength {
		again(http.StatusUnauthorized, "current_password")
		return
	}
	// Several store calls and a hash: one budget for them all.
	ctx, cancel := context.WithTimeout(r.Context(), provider.CallTimeout)
	defer cancel()
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	if err != nil {
		p.logger.Warn("password change could not read the user", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	email := user.Profile.Email
	var acct *session.Account
	if email != "" {
		acct, err = p.cfg.Users.GetAccount(ctx, signin.ProviderPassword, email)
	}
	if email == "" || errors.Is(err, session.ErrNotFound) || err == nil && acct.UserID != user.ID {
		again(http.StatusBadRequest, "no_password")
		return
	}
	if err != nil {
		p.logger.Warn("password change could not read the account", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	switch s.CheckPassword(ctx, r, acct, current) {
	case signin.PasswordMatches:
	case signin.PasswordUnavailable:
		p.logger.Warn("password change could not reach the store")
		again(http.StatusServiceUnavailable, "unavailable")
		return
	case signin.PasswordLocked:
		p.logger.Info("password change refused: too many failed attempts for the account")
		again(http.StatusTooManyRequests, "too_many_attempts")
		return
	case signin.PasswordUnchecked:
		p.logger.Warn("password change could not check the current password")
		again(http.StatusServiceUnavailable, "unavailable")
		return
	default:
		p.logger.Info("password change refused: wrong current password")
		again(http.StatusUnauthorized, "current_password")
		return
	}
	if _, ok := s.SetPassword(ctx, w, r, user.ID, email, password, sess.ID, session.ReasonPasswordChange); !ok {
		return
	}
	// The current password was just typed: a re-authentication. Every
	// other browser is forgotten, as its sessions are ended.
	if err := p.cfg.Sessions.Reauthenticate(ctx, sess.UserID, sess.ID, p.cfg.Now(), []string{signin.AMRPassword}); err != nil {
		p.logger.Warn("a password change could not record the re-authentication", zap.Error(err))
	}
	s.ForgetDevices(ctx, w, r, user.ID)
	s.AccountChanged(ctx, user, session.UserChange{Kind: session.ChangePasswordChanged})
	p.logger.Info("password changed", zap.String("user_id", user.ID))
	back(w, r, "notice", "password_changed")
}
