package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Password defaults. The attempt limit is Convex Auth's: 10 failed
// attempts per account per hour.
const (
	DefaultPasswordMinLength = 8
	// MaxPasswordLength bounds what is hashed.
	MaxPasswordLength    = 256
	DefaultMaxAttempts   = 10
	DefaultAttemptWindow = time.Hour
	passwordRateKey      = "password:"
)

// PasswordConfig configures sign-up and sign-in by email and password.
type PasswordConfig struct {
	// MinLength is the shortest password accepted at sign-up, in
	// characters. Default: 8.
	MinLength int
	// MaxAttempts is how many failed sign-ins an account may have per
	// AttemptWindow; the next is refused, right password or not, until the
	// window ends. Default: 10.
	MaxAttempts int
	// AttemptWindow. Default: 1h.
	AttemptWindow time.Duration
	// Argon2 are the hashing costs of new passwords. Default:
	// DefaultArgon2Params. Stored hashes carry their own.
	Argon2 Argon2Params
	// VerifyEmail is VerifyOff, VerifyOptional (sign-up mails a
	// verification link; the user may sign in before using it) or
	// VerifyRequired (nobody signs in before verifying). Default:
	// optional when mail is configured, off when it is not.
	VerifyEmail string
	// VerifyTTL is how long a verification link works. Under required, a
	// sign-up not verified by then is forgotten (no user is created before
	// verification), and the address may sign up again. Default: 24h.
	VerifyTTL time.Duration
	// ResetTTL is how long a password-reset link works. Default: 15m.
	ResetTTL time.Duration
}

// Email verification modes.
const (
	VerifyOff      = "off"
	VerifyOptional = "optional"
	VerifyRequired = "required"
)

// Defaults of the verification and reset links.
const (
	DefaultVerifyTTL = 24 * time.Hour
	MaxVerifyTTL     = 7 * 24 * time.Hour
	DefaultResetTTL  = 15 * time.Minute
)

func (c *PasswordConfig) fill(mail bool) error {
	if c.VerifyEmail == "" {
		c.VerifyEmail = VerifyOff
		if mail {
			c.VerifyEmail = VerifyOptional
		}
	}
	switch c.VerifyEmail {
	case VerifyOff:
	case VerifyOptional, VerifyRequired:
		if !mail {
			return fmt.Errorf("signin: password verify_email %s needs mail: add an email { smtp_host ... from ... } block", c.VerifyEmail)
		}
	default:
		return fmt.Errorf("signin: password verify_email %q is unknown: use off, optional or required", c.VerifyEmail)
	}
	if c.VerifyTTL == 0 {
		c.VerifyTTL = DefaultVerifyTTL
	}
	if c.ResetTTL == 0 {
		c.ResetTTL = DefaultResetTTL
	}
	if c.VerifyTTL < time.Minute || c.VerifyTTL > MaxVerifyTTL {
		return fmt.Errorf("signin: password verify_ttl %s is out of range: use 1m to %s", c.VerifyTTL, MaxVerifyTTL)
	}
	if c.ResetTTL < time.Minute || c.ResetTTL > MaxLinkTTL {
		return fmt.Errorf("signin: password reset_ttl %s is out of range: use 1m to %s", c.ResetTTL, MaxLinkTTL)
	}
	if c.MinLength == 0 {
		c.MinLength = DefaultPasswordMinLength
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.AttemptWindow == 0 {
		c.AttemptWindow = DefaultAttemptWindow
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2Params
	}
	if c.MinLength < 1 || c.MinLength > MaxPasswordLength {
		return fmt.Errorf("signin: password min_length %d is out of range: use 1 to %d (8 or more is wise)", c.MinLength, MaxPasswordLength)
	}
	if c.MaxAttempts < 1 || c.AttemptWindow < time.Second {
		return errors.New("signin: password max_attempts must be at least 1 and the window at least 1s")
	}
	return nil
}

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

// normalizeAddress checks a typed email address and returns it normalised.
// It accepts a bare address only: no display name, no angle brackets.
func normalizeAddress(raw string) (string, bool) {
	email := session.NormalizeEmail(raw)
	if email == "" || len(email) > session.MaxEmailBytes || strings.ContainsAny(email, "\r\n<>,; ") {
		return "", false
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email, "@") {
		return "", false
	}
	return email, true
}

// servePassword handles POST /auth/signin/password: intent=signin or
// intent=signup, email, password, redirectTo.
func (s *Service) servePassword(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	if !s.readForm(w, r) {
		return false
	}
	cfg := s.cfg.Password
	intent := r.PostForm.Get("intent")
	mode := "signin"
	if intent == "signup" {
		mode = "signup"
	}
	redirectTo := s.cfg.Redirects.Resolve(r.PostForm.Get("redirectTo"))
	again := func(status int, code string) {
		d := s.pageFor(mode, code, redirectTo)
		d.Email = truncate(r.PostForm.Get("email"), session.MaxEmailBytes)
		s.render(w, r, status, d)
	}
	email, ok := normalizeAddress(r.PostForm.Get("email"))
	if !ok {
		again(http.StatusBadRequest, "bad_email")
		return false
	}
	password := r.PostForm.Get("password")
	if len(password) > MaxPasswordLength {
		again(http.StatusBadRequest, "password_long")
		return false
	}

	limit, global := LimitSignIn, ""
	if mode == "signup" {
		limit, global = LimitSignUp, LimitGlobalSignUp
	}
	if s.limited(w, r, limit, global, again) {
		return false
	}
	// Several store calls and a hash: one budget for them all.
	ctx, cancel := context.WithTimeout(r.Context(), providerCallTimeout)
	defer cancel()
	if mode == "signup" {
		if utf8.RuneCountInString(password) < cfg.MinLength {
			again(http.StatusBadRequest, "password_short")
			return false
		}
		var hash string
		err := s.hashing(ctx, func() (err error) {
			hash, err = HashPassword(password, cfg.Argon2)
			return err
		})
		if err != nil {
			s.logger.Error("hashing a password failed", zap.Error(err))
			again(http.StatusInternalServerError, "unavailable")
			return false
		}
		if cfg.VerifyEmail == VerifyRequired && s.signUpUnverified(ctx, w, r, email, hash, redirectTo, again) {
			return false
		}
		if guest := s.currentGuest(ctx, r); guest != nil {
			// A guest signs up in place: same user, same sub.
			var user *session.User
			user, err = s.adoptGuest(ctx, guest, session.Account{Provider: ProviderPassword, ProviderAccountID: email, Secret: hash}, Identity{Email: email})
			if err == nil {
				return s.finishSignUp(w, r, user, redirectTo)
			}
		} else {
			user, cerr := s.cfg.Users.CreateUser(ctx, session.NewUser{Profile: session.Profile{Email: email}})
			if cerr != nil {
				s.logger.Warn("sign-up could not create the user", zap.Error(cerr))
				again(http.StatusServiceUnavailable, "unavailable")
				return false
			}
			err = s.cfg.Users.CreateAccount(ctx, session.Account{Provider: ProviderPassword, ProviderAccountID: email, UserID: user.ID, Secret: hash})
			if err == nil {
				return s.finishSignUp(w, r, user, redirectTo)
			}
			_ = s.cfg.Users.RemoveUser(ctx, user.ID)
		}
		if !errors.Is(err, session.ErrAccountExists) {
			s.logger.Warn("sign-up could not create the account", zap.Error(err))
			again(http.StatusServiceUnavailable, "unavailable")
			return false
		}
		// The account exists: this is a sign-in attempt, counted as one.
	}

	attempts := rateLimit{flow: "password sign-in", key: passwordRateKey + email, max: cfg.MaxAttempts, window: cfg.AttemptWindow,
		reason: "too many failed attempts for the account", code: "too_many_attempts"}
	if s.overLimit(ctx, attempts, again) {
		return false
	}
	acct, err := s.cfg.Users.GetAccount(ctx, ProviderPassword, email)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		s.logger.Warn("password sign-in could not reach the store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	}
	stored := s.dummyHash
	if acct != nil {
		stored = acct.Secret
	}
	// An unknown account costs one hash too, so timing tells nothing.
	var match bool
	var verr error
	if err := s.hashing(ctx, func() error {
		match, verr = VerifyPassword(password, stored)
		return nil
	}); err != nil {
		s.logger.Warn("password sign-in timed out waiting to hash", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	}
	if verr != nil {
		s.logger.Error("a stored password hash is unreadable", zap.Error(verr))
	}
	if acct == nil || !match {
		if mode == "signup" {
			again(http.StatusConflict, "account_exists")
			return false
		}
		again(http.StatusUnauthorized, "credentials")
		return false
	}
	_ = s.cfg.Users.RateReset(ctx, passwordRateKey+email)
	if passwordhash.Imported(stored) {
		// An imported hash becomes the gateway's argon2id, in the same
		// hashing slots; the sign-in goes on if that fails.
		fresh, err := passwordhash.Rehash(password, stored, func(p string) (string, error) { return s.hash(ctx, p) })
		if err == nil {
			err = s.cfg.Users.(session.AccountSecretSetter).SetAccountSecret(ctx, ProviderPassword, email, acct.UserID, fresh)
		}
		if err != nil {
			s.logger.Warn("an imported password hash could not be replaced by argon2id", zap.String("user_id", acct.UserID), zap.Error(err))
		}
	}
	user, err := s.cfg.Users.GetUser(ctx, acct.UserID)
	if err != nil {
		s.logger.Warn("password sign-in could not read the user", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	}
	return s.finishPasswordSignIn(w, r, user, email, redirectTo, again)
}
