package signin

import (
	"context"
	"errors"
	"net/http"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/commonpasswords"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// What the password flows share, and the account page uses: hashing slots,
// the rules of a new password, checking one against its account and
// setting one.

// passwordRateKey prefixes an account's count of failed attempts.
const passwordRateKey = "password:"

// hashing runs fn, an argon2id hash, in one of a few slots: each hash
// takes Argon2.Memory of RAM, so a flood of sign-ups or sign-ins queues
// instead of exhausting memory.
func (s *Service) hashing(ctx context.Context, fn func() error) error {
	select {
	case s.hashSlots <- struct{}{}:
		defer func() { <-s.hashSlots }()
		return fn()
	case <-ctx.Done():
		return ctx.Err()
	}
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

// NewPasswordProblem checks a new password and its confirmation and
// returns the sign-in page's error code, or "": too long, too short, one
// of the 10,000 most common passwords (any letter case), or not
// confirmed.
func (s *Service) NewPasswordProblem(password, confirm string) string {
	switch {
	case len(password) > MaxPasswordLength:
		return "password_long"
	case utf8.RuneCountInString(password) < s.cfg.Password.MinLength:
		return "password_short"
	case commonpasswords.IsCommon(password):
		return "password_common"
	case password != confirm:
		return "password_mismatch"
	}
	return ""
}

// SetPassword replaces the password of userID's account email, ends the
// user's sessions but keepSessionID for reason, and forgets failed
// attempts. On failure it has answered with the sign-in page.
func (s *Service) SetPassword(ctx context.Context, w http.ResponseWriter, r *http.Request, userID, email, password, keepSessionID, reason string) (*session.User, bool) {
	fail := func(status int, code, what string, err error) (*session.User, bool) {
		s.logger.Warn("setting a password could not "+what, zap.Error(err))
		s.failSignIn(w, r, status, code)
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
	s.forgetLockout(ctx, email)
	return user, true
}

// PasswordCheck is how CheckPassword went.
type PasswordCheck int

// The outcomes of CheckPassword.
const (
	PasswordMatches PasswordCheck = iota
	// PasswordWrong: no password account, a password longer than
	// MaxPasswordLength, or no match.
	PasswordWrong
	// PasswordLocked: too many failed attempts for the account.
	PasswordLocked
	// PasswordUnavailable: the store did not answer.
	PasswordUnavailable
	// PasswordUnchecked: no hashing slot came free in time, or the stored
	// hash is unreadable.
	PasswordUnchecked
)

// CheckPassword checks password against acct, the user's password account
// (nil: none), from r's browser, counting the attempt as a sign-in does
// (lockout.go); a match forgets that client's failed ones. The account
// page's forms use it.
func (s *Service) CheckPassword(ctx context.Context, r *http.Request, acct *session.Account, password string) PasswordCheck {
	if acct == nil || s.hashSlots == nil || len(password) > MaxPasswordLength {
		return PasswordWrong
	}
	attempt := s.newPasswordAttempt(ctx, r, acct.ProviderAccountID, acct)
	// CheckPassword answers no request itself: the wait is not sent.
	code, err := s.admit(ctx, http.Header{}, attempt)
	if err != nil {
		return PasswordUnavailable
	}
	if code != "" {
		return PasswordLocked
	}
	var match bool
	var verr error
	if err := s.hashing(ctx, func() error {
		match, verr = VerifyPassword(password, acct.Secret)
		return nil
	}); err != nil || verr != nil {
		return PasswordUnchecked
	}
	if !match {
		s.failed(ctx, attempt)
		return PasswordWrong
	}
	s.succeeded(ctx, attempt)
	return PasswordMatches
}
