package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// DefaultGuestTTL is how long a guest may go unused before it is removed
// with its sessions.
const DefaultGuestTTL = 30 * 24 * time.Hour

// AnonymousConfig configures "Continue as guest": a user with no email and
// no account, signed up in place when it later signs in with a method
// whose account is new.
type AnonymousConfig struct {
	// TTL is how long a guest may go unused (no token minted for it)
	// before the store removes it and its sessions. Default: 30 days.
	TTL time.Duration
}

func (c *AnonymousConfig) fill() error {
	if c.TTL == 0 {
		c.TTL = DefaultGuestTTL
	}
	if c.TTL < time.Minute {
		return fmt.Errorf("signin: anonymous guest_ttl %s is too short: use at least 1m (default %s)", c.TTL, DefaultGuestTTL)
	}
	return nil
}

// serveGuest handles POST /auth/signin/anonymous: a new guest user, rate
// limited as sign-ups are, and a session for it.
func (s *Service) serveGuest(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	if !s.readForm(w, r) {
		return false
	}
	redirectTo := s.cfg.Redirects.Resolve(r.PostForm.Get("redirectTo"))
	again := func(status int, code string) { s.render(w, r, status, s.pageFor("signin", code, redirectTo)) }
	// A browser that is signed in already keeps its user: a second click
	// must not make a second guest.
	if sess, err := s.cfg.Host.Session(r); err != nil {
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	} else if sess != nil {
		s.redirect(w, r, redirectTo)
		return false
	}
	if s.limited(w, r, LimitSignUp, LimitGlobalSignUp, again) {
		return false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := s.cfg.Users.CreateUser(ctx, session.NewUser{Anonymous: true, TTL: s.cfg.Anonymous.TTL})
	if err != nil {
		s.logger.Warn("guest sign-in could not create the user", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	}
	return s.finish(w, r, user, ProviderAnonymous, redirectTo)
}

// guestSessionUser is the user ID of the request's session when it is a
// guest's session, else "".
func (s *Service) guestSessionUser(r *http.Request) string {
	sess, err := s.cfg.Host.Session(r)
	if err != nil || sess == nil || sess.Provider != ProviderAnonymous {
		return ""
	}
	return sess.UserID
}

// currentGuest is the guest the request is signed in as, if it is still
// a guest; nil otherwise (and when the store cannot tell: the sign-in then
// goes on as if there were no guest).
func (s *Service) currentGuest(ctx context.Context, r *http.Request) *session.User {
	id := s.guestSessionUser(r)
	if id == "" {
		return nil
	}
	u, err := s.cfg.Users.GetUser(ctx, id)
	if err != nil || !u.Anonymous {
		return nil
	}
	return u
}

// adoptGuest binds acct to the guest and makes the guest a full user in
// place, its profile from id: same user ID, no expiry any more. It returns
// session.ErrAccountExists, changing nothing, if the account is bound
// already.
func (s *Service) adoptGuest(ctx context.Context, guest *session.User, acct session.Account, id provider.Identity) (*session.User, error) {
	acct.UserID = guest.ID
	if err := s.cfg.Users.CreateAccount(ctx, acct); err != nil {
		return nil, err
	}
	u := *guest
	fillProfile(&u.Profile, id)
	u.Anonymous = false
	if err := s.cfg.Users.UpdateUser(ctx, &u); err != nil {
		// Undo the binding, so the account does not point at a guest that
		// will expire.
		if derr := s.cfg.Users.DeleteAccount(ctx, acct.Provider, acct.ProviderAccountID); derr != nil && !errors.Is(derr, session.ErrNotFound) {
			s.logger.Error("a guest's new account could not be unbound after a failed upgrade", zap.String("user_id", guest.ID), zap.Error(derr))
		}
		return nil, fmt.Errorf("upgrading the guest: %w", err)
	}
	return &u, nil
}
