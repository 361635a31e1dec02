package signin

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// servePassword handles POST /auth/signin/password: intent=signin or
// intent=signup, email, password, redirectTo.
func (s *Service) servePassword(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	if !s.ReadForm(w, r) {
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
		d := s.PageFor(mode, code, redirectTo)
		d.Email = truncate(r.PostForm.Get("email"), session.MaxEmailBytes)
		s.FailForm(w, r, code, s.signInBack(mode, redirectTo, d.Email), func() { s.Render(w, r, status, d) })
	}
	email, ok := normalizeAddress(r.PostForm.Get("email"))
	if !ok {
		again(http.StatusBadRequest, "bad_email")
		return false
	}
	if !s.addressAdmitted(ProviderPassword, email) {
		again(http.StatusForbidden, refusedCode(provider.RuleEmailDomain))
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
	if s.Limited(w, r, limit, global, again) {
		return false
	}
	// Several store calls and a hash: one budget for them all.
	ctx, cancel := context.WithTimeout(r.Context(), providerCallTimeout)
	defer cancel()
	if mode == "signup" {
		// The rules of a new password, the confirmation aside (the form
		// has none).
		if problem := s.NewPasswordProblem(password, password); problem != "" {
			again(http.StatusBadRequest, problem)
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
		if cfg.VerifyEmail == VerifyRequired {
			s.signUpUnverified(ctx, w, r, email, hash, redirectTo, again)
			return false
		}
		if guest := s.currentGuest(ctx, r); guest != nil {
			// A guest signs up in place: same user, same sub.
			var user *session.User
			user, err = s.adoptGuest(ctx, guest, session.Account{Provider: ProviderPassword, ProviderAccountID: email, Secret: hash}, provider.Identity{Email: email})
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

	acct, err := s.cfg.Users.GetAccount(ctx, ProviderPassword, email)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		s.logger.Warn("password sign-in could not reach the store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	}
	attempt := s.newPasswordAttempt(ctx, r, email, acct)
	if code, err := s.admit(ctx, w.Header(), attempt); err != nil || code != "" {
		if err != nil {
			s.logger.Warn("password sign-in could not reach the store", zap.Error(err))
			again(http.StatusServiceUnavailable, "unavailable")
			return false
		}
		again(http.StatusTooManyRequests, code)
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
		s.failed(ctx, attempt)
		if mode == "signup" {
			again(http.StatusConflict, "account_exists")
			return false
		}
		again(http.StatusUnauthorized, "credentials")
		return false
	}
	s.succeeded(ctx, attempt)
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
