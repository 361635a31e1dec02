package signin

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// signInOwner is the existing user an email sign-in of email would sign in
// as (resolve's first two steps), or "" if it would make a new one.
func (s *Service) signInOwner(ctx context.Context, email string) (string, error) {
	acct, err := s.cfg.Users.GetAccount(ctx, ProviderEmail, email)
	if err == nil {
		return acct.UserID, nil
	}
	if !errors.Is(err, session.ErrNotFound) {
		return "", err
	}
	if s.cfg.LinkByEmail {
		u, err := s.cfg.Users.UserByEmail(ctx, email)
		if err == nil {
			return u.ID, nil
		}
		if !errors.Is(err, session.ErrNotFound) {
			return "", err
		}
	}
	return "", nil
}

// serveEmailRequest handles POST /auth/signin/email: it sends a magic link
// and its code (code mode: a code only) to the address, whether or not an
// account exists for it, and binds the link to this browser with a cookie.
func (s *Service) serveEmailRequest(w http.ResponseWriter, r *http.Request) {
	if !s.ReadForm(w, r) {
		return
	}
	cfg := s.cfg.Email
	redirectTo := s.cfg.Redirects.Resolve(r.PostForm.Get("redirectTo"))
	again := func(status int, code string) {
		d := s.PageFor("signin", code, redirectTo)
		d.Email = truncate(r.PostForm.Get("email"), session.MaxEmailBytes)
		s.FailForm(w, r, code, s.signInBack("signin", redirectTo, d.Email), func() { s.Render(w, r, status, d) })
	}
	email, ok := normalizeAddress(r.PostForm.Get("email"))
	if !ok {
		again(http.StatusBadRequest, "bad_email")
		return
	}
	if !s.addressAdmitted(ProviderEmail, email) {
		again(http.StatusForbidden, refusedCode(provider.RuleEmailDomain))
		return
	}
	if s.sendLimited(w, r, "email sign-in", email, again) {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	codeMode := cfg.Mode == EmailModeCode
	owner, err := s.signInOwner(ctx, email)
	var token, code string
	if err == nil {
		token, code, err = s.issue(ctx, w, r, linkRecord{Email: email, RedirectTo: redirectTo, CodeOnly: codeMode, Guest: s.guestSessionUser(r)}, owner, cfg.LinkTTL)
	}
	if err != nil {
		s.logger.Warn("email sign-in could not save the link", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	kind, link := mail.SignInLink, s.cfg.Origin+callbackPrefix+ProviderEmail+"?"+url.Values{"token": {token}}.Encode()
	if codeMode {
		kind, link = mail.SignInCode, ""
	}
	if err := s.sendMail(r.Context(), kind, email, link, code, cfg.LinkTTL); err != nil {
		s.logger.Warn("sending a sign-in mail failed", zap.Error(err))
		again(http.StatusServiceUnavailable, "send_failed")
		return
	}
	s.logger.Info("sign-in mail sent", zap.String("mode", cfg.Mode))
	if codeMode {
		// The token stays in this page: only this browser and the mailed
		// code together sign in.
		d := s.PageFor("confirm_email", "", redirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeMode, d.CodeLength = token, email, true, true, codeDigits
		s.Render(w, r, http.StatusOK, d)
		return
	}
	d := s.PageFor("check_email", "", redirectTo)
	d.Email = email
	s.Render(w, r, http.StatusOK, d)
}

// serveEmailCallback: GET shows a page naming the account, with a button
// that posts the token back (mail scanners that open links must not use
// them up) and, in a browser that did not ask for the link, a code field.
// POST takes the token, once, and signs in: in the browser that asked for
// the link by itself, anywhere else (and in code mode) only with the
// mailed code.
func (s *Service) serveEmailCallback(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	l, ok := s.openLink(w, r, purposeSignIn)
	if !ok {
		return false
	}
	token, rec, needCode := l.token, l.rec, l.needCode
	confirm := func(status int, code string) {
		d := s.PageFor("confirm_email", code, rec.RedirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeMode, d.CodeLength = token, rec.Email, needCode, rec.CodeOnly, codeDigits
		s.FailForm(w, r, code, FormBack{Path: callbackPrefix + ProviderEmail, Token: token}, func() { s.Render(w, r, status, d) })
	}
	if r.Method != http.MethodPost {
		confirm(http.StatusOK, r.URL.Query().Get("error"))
		return false
	}
	if needCode && !s.checkCode(w, r, token, rec, s.cfg.Email.LinkTTL, confirm) {
		return false
	}
	if !s.takeLink(w, r, token) {
		return false
	}
	// Opening the link in the browser that asked for it, or typing its
	// code, proves control of the address. A guest is signed up in place
	// only by a link it asked for itself.
	guest := s.adoptingGuest(r.Context(), r, l.bound, rec.Guest)
	user, err := s.resolveAs(r.Context(), ProviderEmail, provider.Identity{Subject: rec.Email, Email: rec.Email, EmailVerified: true}, guest)
	if err != nil {
		s.logger.Warn("email sign-in could not find or create the user", zap.Error(err))
		s.failSignIn(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	return s.finish(w, r, user, ProviderEmail, rec.RedirectTo)
}
