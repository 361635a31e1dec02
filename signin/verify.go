package signin

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Email verification after a password sign-up: the link and code mailed,
// the page that uses them, the resend.

// verifyLink is the mailed link of a verification token.
func (s *Service) verifyLink(token string) string {
	return s.cfg.Origin + PathVerify + "?" + url.Values{"token": {token}}.Encode()
}

// sendVerification stores rec (purpose verify, signup or signup-taken)
// under a new token bound to this browser and mails it; it returns the
// token. Limits and failures are answered through again.
func (s *Service) sendVerification(w http.ResponseWriter, r *http.Request, rec linkRecord, again func(int, string)) (string, bool) {
	if s.sendLimited(w, r, "email verification", rec.Email, again) {
		return "", false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	ttl := s.cfg.Password.VerifyTTL
	// A pending sign-up has no user yet (rec.UserID empty): its link is
	// nobody's and ends at its expiry.
	token, code, err := s.issue(ctx, w, r, rec, rec.UserID, ttl)
	if err != nil {
		s.logger.Warn("email verification could not save the link", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return "", false
	}
	d := mail.Data{Kind: mail.Verify, SiteName: s.siteName, Site: s.Site(), Email: rec.Email, Link: s.verifyLink(token), Code: code, Expires: humanDuration(ttl)}
	if rec.Purpose == purposeSignUpTaken {
		// The owner learns of the try, and how to sign in; the token
		// goes in no mail.
		d = s.noticeData(mail.SignUpExists, rec.Email)
	}
	if err := s.deliver(r.Context(), d); err != nil {
		s.logger.Warn("sending a verification mail failed", zap.String("kind", d.Kind), zap.Error(err))
		again(http.StatusServiceUnavailable, "send_failed")
		return "", false
	}
	s.logger.Info("verification mail sent")
	return token, true
}

// signUpUnverified answers a sign-up under verify_email required: no user
// before the address is verified; the sign-up (address and hash) waits in
// its mailed link and is forgotten when the link expires. An address that
// has an account gets the same answer, after the same steps (a hash
// already made, a lookup, a link stored, a mail sent), so neither the page
// nor its timing tells the two apart; its owner is mailed that someone
// tried, and nothing counts as a sign-in attempt.
func (s *Service) signUpUnverified(ctx context.Context, w http.ResponseWriter, r *http.Request, email, hash, redirectTo string, again func(int, string)) {
	_, err := s.cfg.Users.GetAccount(ctx, ProviderPassword, email)
	rec := linkRecord{Email: email, RedirectTo: redirectTo, Purpose: purposeSignUp, Secret: hash}
	switch {
	case err == nil:
		rec.Purpose, rec.Secret = purposeSignUpTaken, ""
	case !errors.Is(err, session.ErrNotFound):
		s.logger.Warn("sign-up could not reach the store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	if token, ok := s.sendVerification(w, r, rec, again); ok {
		s.renderVerifySent(w, r, http.StatusOK, "", email, token, redirectTo)
	}
}

// finishSignUp signs a new password user in; under verify_email optional
// it mails the verification link first, best effort: the user is in either
// way, and a reset verifies the address too.
func (s *Service) finishSignUp(w http.ResponseWriter, r *http.Request, user *session.User, redirectTo string) bool {
	if s.cfg.Password.VerifyEmail == VerifyOptional && !user.Profile.EmailVerified && user.Profile.Email != "" {
		s.sendVerification(w, r, linkRecord{Email: user.Profile.Email, RedirectTo: redirectTo, Purpose: purposeVerify, UserID: user.ID},
			func(int, string) {})
	}
	return s.finish(w, r, user, ProviderPassword, redirectTo)
}

// finishPasswordSignIn signs in a user whose password matched; under
// verify_email required, an unverified one gets a new verification link
// instead.
func (s *Service) finishPasswordSignIn(w http.ResponseWriter, r *http.Request, user *session.User, email, redirectTo string, again func(int, string)) bool {
	if s.cfg.Password.VerifyEmail == VerifyRequired && !(user.Profile.EmailVerified && user.Profile.Email == email) {
		s.logger.Info("password sign-in refused: the email is not verified")
		if token, ok := s.sendVerification(w, r, linkRecord{Email: email, RedirectTo: redirectTo, Purpose: purposeVerify, UserID: user.ID}, again); ok {
			s.FailForm(w, r, "verify_needed", FormBack{Path: PathVerifyResend, Token: token}, func() {
				s.renderVerifySent(w, r, http.StatusForbidden, "verify_needed", email, token, redirectTo)
			})
		}
		return false
	}
	return s.finish(w, r, user, ProviderPassword, redirectTo)
}

// renderVerifySent shows "check your email" with a resend button.
func (s *Service) renderVerifySent(w http.ResponseWriter, r *http.Request, status int, code, email, token, redirectTo string) {
	d := s.PageFor("verify_sent", code, redirectTo)
	d.Email, d.Token = email, token
	s.Render(w, r, status, d)
}

// serveVerify: GET shows the verification page (a button; a code field in
// another browser); POST verifies the email, creates the account of a
// pending sign-up, and signs this browser in with the verified profile.
func (s *Service) serveVerify(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	l, ok := s.openLink(w, r, purposeVerify, purposeSignUp)
	if !ok {
		return false
	}
	token, rec, needCode := l.token, l.rec, l.needCode
	confirm := func(status int, code string) {
		d := s.PageFor("verify", code, rec.RedirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeLength = token, rec.Email, needCode, codeDigits
		s.FailForm(w, r, code, FormBack{Path: PathVerify, Token: token}, func() { s.Render(w, r, status, d) })
	}
	if r.Method != http.MethodPost {
		confirm(http.StatusOK, r.URL.Query().Get("error"))
		return false
	}
	if needCode && !s.checkCode(w, r, token, rec, s.cfg.Password.VerifyTTL, confirm) {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), providerCallTimeout)
	defer cancel()
	unavailable := func(what string, err error) bool {
		s.logger.Warn("email verification could not "+what, zap.Error(err))
		s.failSignIn(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	if needCode {
		// Another browser also gives the account's password (the try was
		// counted with the code), so a sign-up someone else made with
		// this address cannot be completed, and shared, by its owner by
		// mistake.
		secret := rec.Secret
		if rec.Purpose == purposeVerify {
			acct, err := s.cfg.Users.GetAccount(ctx, ProviderPassword, rec.Email)
			if err != nil && !errors.Is(err, session.ErrNotFound) {
				return unavailable("read the account", err)
			}
			if acct != nil && acct.UserID == rec.UserID {
				secret = acct.Secret
			}
		}
		if secret == "" {
			secret = s.dummyHash
		}
		var match bool
		if err := s.hashing(ctx, func() (err error) {
			match, err = VerifyPassword(r.PostForm.Get("password"), secret)
			return err
		}); err != nil {
			return unavailable("check the password", err)
		}
		if !match {
			s.logger.Info("email verification refused: wrong password in another browser")
			confirm(http.StatusUnauthorized, "verify_password")
			return false
		}
	}
	if !s.takeLink(w, r, token) {
		return false
	}
	var user *session.User
	if rec.Purpose == purposeSignUp {
		u, err := s.cfg.Users.CreateUser(ctx, session.NewUser{Profile: session.Profile{Email: rec.Email, EmailVerified: true}})
		if err != nil {
			return unavailable("create the user", err)
		}
		err = s.cfg.Users.CreateAccount(ctx, session.Account{Provider: ProviderPassword, ProviderAccountID: rec.Email, UserID: u.ID, Secret: rec.Secret})
		if err != nil {
			_ = s.cfg.Users.RemoveUser(ctx, u.ID)
			if errors.Is(err, session.ErrAccountExists) {
				s.logger.Info("email verification refused: the account was created meanwhile")
				d := s.PageFor("signin", "account_exists", rec.RedirectTo)
				d.Email = rec.Email
				s.FailForm(w, r, "account_exists", s.signInBack("signin", rec.RedirectTo, rec.Email), func() { s.Render(w, r, http.StatusConflict, d) })
				return false
			}
			return unavailable("create the account", err)
		}
		s.logger.Info("signed up after verifying the email")
		user = u
	} else {
		u, err := s.cfg.Users.GetUser(ctx, rec.UserID)
		if errors.Is(err, session.ErrNotFound) || err == nil && u.Profile.Email != rec.Email {
			// The user is gone or changed address since the link was sent.
			s.logger.Info("email verification refused: the user or address changed")
			s.failSignIn(w, r, http.StatusBadRequest, "link")
			return false
		}
		if err != nil {
			return unavailable("read the user", err)
		}
		// The first proof of the address ends what was set up before it.
		changes, err := s.proveAddress(ctx, u, rec.Email, session.Account{Provider: ProviderPassword, ProviderAccountID: rec.Email}, true, session.ReasonEmailVerified)
		if err != nil && len(changes) == 0 {
			return unavailable("mark the email verified", err)
		}
		if err != nil {
			s.logger.Error("email verification could not end what was set up before the address was proved", zap.String("user_id", u.ID), zap.Error(err))
		}
		s.AccountChanged(ctx, u, changes...)
		s.logger.Info("email verified")
		user = u
	}
	// A new session carries the verified profile into the next token.
	return s.finish(w, r, user, ProviderPassword, rec.RedirectTo)
}

// serveVerifyResend: POST mails a new verification link in place of the
// one the page names; only the browser that asked for it may. GET shows
// the page ("check your email", the resend button) that a refused post
// returns to.
func (s *Service) serveVerifyResend(w http.ResponseWriter, r *http.Request) {
	l, ok := s.openLink(w, r, purposeVerify, purposeSignUp, purposeSignUpTaken)
	if !ok {
		return
	}
	token, rec := l.token, l.rec
	if r.Method != http.MethodPost {
		s.renderVerifySent(w, r, http.StatusOK, r.URL.Query().Get("error"), rec.Email, token, rec.RedirectTo)
		return
	}
	again := func(status int, code string) {
		s.FailForm(w, r, code, FormBack{Path: PathVerifyResend, Token: token}, func() {
			s.renderVerifySent(w, r, status, code, rec.Email, token, rec.RedirectTo)
		})
	}
	if !l.bound {
		s.failSignIn(w, r, http.StatusBadRequest, "link")
		return
	}
	next, ok := s.sendVerification(w, r, linkRecord{Email: rec.Email, RedirectTo: rec.RedirectTo, Purpose: rec.Purpose, UserID: rec.UserID, Secret: rec.Secret}, again)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	if _, err := s.cfg.Users.TakeOnce(ctx, linkKey+token); err != nil && !errors.Is(err, session.ErrNotFound) {
		s.logger.Warn("email verification could not end the replaced link", zap.Error(err))
	}
	s.renderVerifySent(w, r, http.StatusOK, "verify_resent", rec.Email, next, rec.RedirectTo)
}
