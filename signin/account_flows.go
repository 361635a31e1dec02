package signin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Paths of email verification and the password's reset and change.
const (
	PathVerify         = "/auth/verify"
	PathVerifyResend   = "/auth/verify/resend"
	PathForgotPassword = "/auth/password/forgot"
	PathResetPassword  = "/auth/password/reset"
	// resetMailTimeout bounds a reset mail sent after the answer.
	resetMailTimeout = 30 * time.Second
)

// servePasswordPath serves the verification, reset and change paths and
// reports whether path was one of them.
func (s *Service) servePasswordPath(w http.ResponseWriter, r *http.Request, path string) bool {
	pc := s.cfg.Password
	switch {
	case path == PathChangePassword:
		s.serveChangePassword(w, r)
	case path == PathVerify && pc.VerifyEmail != VerifyOff:
		s.report(r, http.MethodPost, ProviderPassword, s.serveVerify(w, r))
	case path == PathVerifyResend && pc.VerifyEmail != VerifyOff:
		s.serveVerifyResend(w, r)
	case path == PathForgotPassword && s.cfg.Mail != nil:
		s.serveForgot(w, r)
	case path == PathResetPassword && s.cfg.Mail != nil:
		s.report(r, http.MethodPost, ProviderPassword, s.serveReset(w, r))
	default:
		return false
	}
	return true
}

// hash hashes a new password in a hashing slot.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	var hash string
	err := s.hashing(ctx, func() (err error) {
		hash, err = HashPassword(password, s.cfg.Password.Argon2)
		return err
	})
	return hash, err
}

// newPasswordProblem checks a new password and its confirmation and
// returns the page's error code, or "".
func (s *Service) newPasswordProblem(password, confirm string) string {
	switch {
	case len(password) > MaxPasswordLength:
		return "password_long"
	case utf8.RuneCountInString(password) < s.cfg.Password.MinLength:
		return "password_short"
	case password != confirm:
		return "password_mismatch"
	}
	return ""
}

// --- verification ---

// verifyLink is the mailed link of a verification token.
func (s *Service) verifyLink(token string) string {
	return s.cfg.Origin + PathVerify + "?" + url.Values{"token": {token}}.Encode()
}

// sendVerification stores rec (purpose verify or signup) under a new token
// bound to this browser and mails it; it returns the token. Limits and
// failures are answered through again.
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
	if err := s.sendMail(r.Context(), mail.Verify, rec.Email, s.verifyLink(token), code, ttl); err != nil {
		s.logger.Warn("sending a verification mail failed", zap.Error(err))
		again(http.StatusServiceUnavailable, "send_failed")
		return "", false
	}
	s.logger.Info("verification mail sent")
	return token, true
}

// signUpUnverified starts a sign-up under verify_email required: no user
// before the address is verified; the sign-up (address and hash) waits in
// its mailed link and is forgotten when the link expires. It reports
// whether it answered; false means the account exists, and the sign-up is
// a sign-in attempt.
func (s *Service) signUpUnverified(ctx context.Context, w http.ResponseWriter, r *http.Request, email, hash, redirectTo string, again func(int, string)) bool {
	_, err := s.cfg.Users.GetAccount(ctx, ProviderPassword, email)
	switch {
	case errors.Is(err, session.ErrNotFound):
		if token, ok := s.sendVerification(w, r, linkRecord{Email: email, RedirectTo: redirectTo, Purpose: purposeSignUp, Secret: hash}, again); ok {
			s.renderVerifySent(w, r, http.StatusOK, "", email, token, redirectTo)
		}
		return true
	case err != nil:
		s.logger.Warn("sign-up could not reach the store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return true
	}
	return false
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
			s.renderVerifySent(w, r, http.StatusForbidden, "verify_needed", email, token, redirectTo)
		}
		return false
	}
	return s.finish(w, r, user, ProviderPassword, redirectTo)
}

// renderVerifySent shows "check your email" with a resend button.
func (s *Service) renderVerifySent(w http.ResponseWriter, r *http.Request, status int, code, email, token, redirectTo string) {
	d := s.pageFor("verify_sent", code, redirectTo)
	d.Email, d.Token = email, token
	s.render(w, r, status, d)
}

// serveVerify: GET shows the verification page (a button; a code field in
// another browser); POST verifies the email, creates the account of a
// pending sign-up, and signs this browser in with the verified profile.
func (s *Service) serveVerify(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	token, rec, ok := s.openLink(w, r, purposeVerify, purposeSignUp)
	if !ok {
		return false
	}
	needCode := !s.boundHere(r, rec)
	confirm := func(status int, code string) {
		d := s.pageFor("verify", code, rec.RedirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeLength = token, rec.Email, needCode, codeDigits
		s.render(w, r, status, d)
	}
	if r.Method != http.MethodPost {
		confirm(http.StatusOK, "")
		return false
	}
	if needCode && !s.checkCode(w, r, token, rec, s.cfg.Password.VerifyTTL, confirm) {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), providerCallTimeout)
	defer cancel()
	unavailable := func(what string, err error) bool {
		s.logger.Warn("email verification could not "+what, zap.Error(err))
		s.render(w, r, http.StatusServiceUnavailable, s.pageData(r, "signin", "unavailable"))
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
				d := s.pageFor("signin", "account_exists", rec.RedirectTo)
				d.Email = rec.Email
				s.render(w, r, http.StatusConflict, d)
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
			s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "link"))
			return false
		}
		if err != nil {
			return unavailable("read the user", err)
		}
		if !u.Profile.EmailVerified {
			u.Profile.EmailVerified = true
			if err := s.cfg.Users.UpdateUser(ctx, u); err != nil {
				return unavailable("update the user", err)
			}
		}
		s.logger.Info("email verified")
		user = u
	}
	// A new session carries the verified profile into the next token.
	return s.finish(w, r, user, ProviderPassword, rec.RedirectTo)
}

// serveVerifyResend mails a new verification link in place of the one the
// page names; only the browser that asked for it may.
func (s *Service) serveVerifyResend(w http.ResponseWriter, r *http.Request) {
	token, rec, ok := s.openLink(w, r, purposeVerify, purposeSignUp)
	if !ok {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.render(w, r, http.StatusMethodNotAllowed, s.pageData(r, "signin", "method"))
		return
	}
	again := func(status int, code string) {
		s.renderVerifySent(w, r, status, code, rec.Email, token, rec.RedirectTo)
	}
	if !s.boundHere(r, rec) {
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "link"))
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

// --- reset ---

// serveForgot: GET asks for the address; POST mails a reset link and code
// when a password account has that address, and answers the same either
// way, at the same speed: the account lookup, the link and the mail all
// happen after the answer.
func (s *Service) serveForgot(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		d := s.pageData(r, "forgot", "")
		d.Email = truncate(r.URL.Query().Get("email"), session.MaxEmailBytes)
		s.render(w, r, http.StatusOK, d)
		return
	}
	if !s.readForm(w, r) {
		return
	}
	redirectTo := s.cfg.Redirects.Resolve(r.PostForm.Get("redirectTo"))
	again := func(status int, code string) {
		d := s.pageFor("forgot", code, redirectTo)
		d.Email = truncate(r.PostForm.Get("email"), session.MaxEmailBytes)
		s.render(w, r, status, d)
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
	d := s.pageFor("reset_sent", "", redirectTo)
	d.Email = email
	s.render(w, r, http.StatusOK, d)
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
	token, rec, ok := s.openLink(w, r, purposeReset)
	if !ok {
		return false
	}
	needCode := !s.boundHere(r, rec)
	again := func(status int, code string) {
		d := s.pageFor("reset", code, rec.RedirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeLength = token, rec.Email, needCode, codeDigits
		s.render(w, r, status, d)
	}
	if r.Method != http.MethodPost {
		again(http.StatusOK, "")
		return false
	}
	password := r.PostForm.Get("password")
	if problem := s.newPasswordProblem(password, r.PostForm.Get("confirm")); problem != "" {
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
	user, ok := s.setPassword(ctx, w, r, rec.UserID, rec.Email, password, "", session.ReasonReset)
	if !ok {
		return false
	}
	if user.Profile.Email == rec.Email && !user.Profile.EmailVerified {
		// The reset proved control of the address.
		user.Profile.EmailVerified = true
		if err := s.cfg.Users.UpdateUser(ctx, user); err != nil {
			s.logger.Warn("password reset could not mark the email verified", zap.Error(err))
		}
	}
	s.logger.Info("password reset")
	return s.finish(w, r, user, ProviderPassword, rec.RedirectTo)
}

// setPassword replaces the password of userID's account email, ends the
// user's sessions but keepSessionID for reason, and forgets failed
// attempts. On failure it has answered.
func (s *Service) setPassword(ctx context.Context, w http.ResponseWriter, r *http.Request, userID, email, password, keepSessionID, reason string) (*session.User, bool) {
	fail := func(status int, code, what string, err error) (*session.User, bool) {
		s.logger.Warn("setting a password could not "+what, zap.Error(err))
		s.render(w, r, status, s.pageData(r, "signin", code))
		return nil, false
	}
	user, err := s.cfg.Users.GetUser(ctx, userID)
	if errors.Is(err, session.ErrNotFound) {
		return fail(http.StatusBadRequest, "link", "find the user", err)
	}
	if err != nil {
		return fail(http.StatusServiceUnavailable, "unavailable", "read the user", err)
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return fail(http.StatusServiceUnavailable, "unavailable", "hash it", err)
	}
	err = s.cfg.Users.(session.AccountSecretSetter).SetAccountSecret(ctx, ProviderPassword, email, userID, hash)
	if errors.Is(err, session.ErrNotFound) {
		return fail(http.StatusBadRequest, "link", "find the account", err)
	}
	if err != nil {
		return fail(http.StatusServiceUnavailable, "unavailable", "store it", err)
	}
	// The password is changed: failing to end sessions now is logged, not
	// shown as a failure that would suggest the old password still works.
	n, err := s.cfg.Sessions.DeleteUser(session.WithRevokeReason(ctx, reason), userID, keepSessionID)
	if err != nil {
		s.logger.Error("a changed password could not end the user's other sessions", zap.String("user_id", userID), zap.Error(err))
	} else {
		s.logger.Info("sessions ended after a new password", zap.String("user_id", userID), zap.Int("sessions", n), zap.String("reason", reason))
	}
	_ = s.cfg.Users.RateReset(ctx, passwordRateKey+email)
	return user, true
}

// --- change ---

// serveChangePassword handles POST /auth/password/change from the account
// page: current, password, confirm. Signed-in users only, same origin.
func (s *Service) serveChangePassword(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	again := func(status int, code string) {
		s.render(w, r, status, s.pageData(r, "change_password", code))
	}
	sess, err := s.cfg.Host.Session(r)
	if err != nil {
		s.logger.Warn("password change could not reach the session store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	if sess == nil {
		s.render(w, r, http.StatusUnauthorized, s.pageFor("signin", "signed_out", PathAccount))
		return
	}
	password := r.PostForm.Get("password")
	if problem := s.newPasswordProblem(password, r.PostForm.Get("confirm")); problem != "" {
		again(http.StatusBadRequest, problem)
		return
	}
	current := r.PostForm.Get("current")
	if len(current) > MaxPasswordLength {
		again(http.StatusUnauthorized, "current_password")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), providerCallTimeout)
	defer cancel()
	user, err := s.cfg.Users.GetUser(ctx, sess.UserID)
	if err != nil {
		s.logger.Warn("password change could not read the user", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	email := user.Profile.Email
	var acct *session.Account
	if email != "" {
		acct, err = s.cfg.Users.GetAccount(ctx, ProviderPassword, email)
	}
	if email == "" || errors.Is(err, session.ErrNotFound) || err == nil && acct.UserID != user.ID {
		again(http.StatusBadRequest, "no_password")
		return
	}
	if err != nil {
		s.logger.Warn("password change could not read the account", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	pc := s.cfg.Password
	attempts := rateLimit{flow: "password change", key: passwordRateKey + email, max: pc.MaxAttempts, window: pc.AttemptWindow,
		reason: "too many failed attempts for the account", code: "too_many_attempts"}
	if s.overLimit(ctx, attempts, again) {
		return
	}
	var match bool
	if err := s.hashing(ctx, func() (err error) {
		match, err = VerifyPassword(current, acct.Secret)
		return err
	}); err != nil {
		s.logger.Warn("password change could not check the current password", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	if !match {
		s.logger.Info("password change refused: wrong current password")
		again(http.StatusUnauthorized, "current_password")
		return
	}
	if _, ok := s.setPassword(ctx, w, r, user.ID, email, password, sess.ID, session.ReasonPasswordChange); !ok {
		return
	}
	s.logger.Info("password changed", zap.String("user_id", user.ID))
	s.redirect(w, r, PathAccount+"?notice=password_changed")
}
