package signin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Password reset: the request that mails a link and code, and the page that
// sets the new password.

// resetMailTimeout bounds a reset mail sent after the answer.
const resetMailTimeout = 30 * time.Second

// serveForgot: GET asks for the address; POST mails a reset link and code
// when a password account has that address, and answers the same either
// way, at the same speed: the account lookup, the link and the mail all
// happen after the answer.
func (s *Service) serveForgot(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		q := r.URL.Query()
		d := s.Page(r, "forgot", q.Get("error"))
		if d.Email = s.flash(r).Email; d.Email == "" {
			d.Email = truncate(q.Get("email"), session.MaxEmailBytes)
		}
		s.Render(w, r, http.StatusOK, d)
		return
	}
	if !s.ReadForm(w, r) {
		return
	}
	redirectTo := s.cfg.Redirects.Resolve(r.PostForm.Get("redirectTo"))
	again := func(status int, code string) {
		d := s.PageFor("forgot", code, redirectTo)
		d.Email = truncate(r.PostForm.Get("email"), session.MaxEmailBytes)
		back := FormBack{Path: PathForgotPassword, Email: d.Email}
		if redirectTo != s.cfg.Redirects.AfterSignIn {
			back.Query = url.Values{"redirectTo": {redirectTo}}
		}
		s.FailForm(w, r, code, back, func() { s.Render(w, r, status, d) })
	}
	email, ok := normalizeAddress(r.PostForm.Get("email"))
	if !ok {
		again(http.StatusBadRequest, "bad_email")
		return
	}
	if s.sendLimited(w, r, "password reset", email, again) {
		return
	}
	// Everything that depends on whether the address has an account
	// happens after the answer, so neither the answer nor its timing tells.
	ttl := s.cfg.Password.ResetTTL
	binding := s.linkBinding(w, r, ttl)
	go s.sendReset(context.WithoutCancel(r.Context()), email, redirectTo, binding, ttl)
	d := s.PageFor("reset_sent", "", redirectTo)
	d.Email = email
	s.Render(w, r, http.StatusOK, d)
}

// sendReset mails a reset link and code when a password account has email;
// it runs after the answer.
func (s *Service) sendReset(ctx context.Context, email, redirectTo, binding string, ttl time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, resetMailTimeout)
	defer cancel()
	acct, err := s.cfg.Users.GetAccount(ctx, ProviderPassword, email)
	if errors.Is(err, session.ErrNotFound) {
		s.logger.Info("password reset asked for an address with no password account")
		return
	}
	if err != nil {
		s.logger.Warn("password reset could not reach the store: no mail sent", zap.Error(err))
		return
	}
	rec := linkRecord{Email: email, RedirectTo: redirectTo, Purpose: purposeReset, UserID: acct.UserID}
	token, code, err := s.issueBound(ctx, binding, rec, acct.UserID, ttl)
	if err != nil {
		s.logger.Warn("password reset could not save the link: no mail sent", zap.Error(err))
		return
	}
	link := s.cfg.Origin + PathResetPassword + "?" + url.Values{"token": {token}}.Encode()
	if err := s.sendMail(ctx, mail.Reset, email, link, code, ttl); err != nil {
		s.logger.Warn("sending a password-reset mail failed", zap.Error(err))
		return
	}
	s.logger.Info("password-reset mail sent")
}

// serveReset: GET asks for the new password twice (and the code, in
// another browser than the one that asked); POST sets it, marks the email
// verified, ends every session of the user and signs this browser in.
func (s *Service) serveReset(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	l, ok := s.openLink(w, r, purposeReset)
	if !ok {
		return false
	}
	token, rec, needCode := l.token, l.rec, l.needCode
	again := func(status int, code string) {
		d := s.PageFor("reset", code, rec.RedirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeLength = token, rec.Email, needCode, codeDigits
		s.FailForm(w, r, code, FormBack{Path: PathResetPassword, Token: token}, func() { s.Render(w, r, status, d) })
	}
	if r.Method != http.MethodPost {
		again(http.StatusOK, r.URL.Query().Get("error"))
		return false
	}
	password := r.PostForm.Get("password")
	if problem := s.NewPasswordProblem(password, r.PostForm.Get("confirm")); problem != "" {
		again(http.StatusBadRequest, problem)
		return false
	}
	if needCode && !s.checkCode(w, r, token, rec, s.cfg.Password.ResetTTL, again) {
		return false
	}
	if !s.takeLink(w, r, token) {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), providerCallTimeout)
	defer cancel()
	user, ok := s.SetPassword(ctx, w, r, rec.UserID, rec.Email, password, "", session.ReasonReset)
	if !ok {
		return false
	}
	// A reset forgets every browser (the one doing it is remembered again
	// as it signs in) and proves the address: the first proof removes the
	// methods set up before it.
	s.ForgetDevices(ctx, nil, nil, user.ID)
	changes := []session.UserChange{{Kind: session.ChangePasswordReset}}
	proof, err := s.proveAddress(ctx, user, rec.Email, session.Account{Provider: ProviderPassword, ProviderAccountID: rec.Email}, false, session.ReasonReset)
	if err != nil {
		s.logger.Error("a password reset could not end what was set up before the address was proved", zap.String("user_id", user.ID), zap.Error(err))
	}
	s.AccountChanged(ctx, user, append(changes, proof...)...)
	s.logger.Info("password reset")
	return s.finish(w, r, user, ProviderPassword, rec.RedirectTo)
}
