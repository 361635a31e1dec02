package signin

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// maxResolveAttempts bounds retries when a concurrent sign-in of the same
// account binds it first.
const maxResolveAttempts = 3

// resolve finds the user of method's account, or creates one: the
// account's user if bound; with LinkByEmail and a verified email, the user
// holding that email verified; else a new user. The profile fills gaps in
// an existing user's record, never overwrites it.
func (s *Service) resolve(ctx context.Context, method string, id provider.Identity) (*session.User, error) {
	return s.resolveAs(ctx, method, id, nil)
}

// resolveAs is resolve for a browser signed in as guest (nil: none): where
// resolve would create a new user, the guest becomes that user in place.
func (s *Service) resolveAs(ctx context.Context, method string, id provider.Identity, guest *session.User) (*session.User, error) {
	users := s.cfg.Users
	id.Email = session.NormalizeEmail(id.Email)
	if id.Email == "" {
		id.EmailVerified = false
	}
	id = clipIdentity(id)
	for range maxResolveAttempts {
		sctx, cancel := context.WithTimeout(ctx, httprule.StoreCallTimeout)
		user, err := s.resolveOnce(sctx, users, method, id, guest)
		cancel()
		if errors.Is(err, session.ErrAccountExists) {
			continue // bound meanwhile: read it again
		}
		return user, err
	}
	return nil, errors.New("the account kept changing during sign-in; try again")
}

func (s *Service) resolveOnce(ctx context.Context, users session.UserStore, method string, id provider.Identity, guest *session.User) (*session.User, error) {
	acct, err := users.GetAccount(ctx, method, id.Subject)
	switch {
	case err == nil:
		user, err := users.GetUser(ctx, acct.UserID)
		if err != nil {
			return nil, fmt.Errorf("reading the account's user: %w", err)
		}
		if fillProfile(&user.Profile, id) {
			if err := users.UpdateUser(ctx, user); err != nil {
				return nil, fmt.Errorf("updating the user's profile: %w", err)
			}
		}
		return user, nil
	case !errors.Is(err, session.ErrNotFound):
		return nil, err
	}

	if s.cfg.LinkByEmail && id.EmailVerified {
		user, err := users.UserByEmail(ctx, id.Email)
		if err == nil {
			if err := users.CreateAccount(ctx, session.Account{Provider: method, ProviderAccountID: id.Subject, UserID: user.ID}); err != nil {
				return nil, err
			}
			if fillProfile(&user.Profile, id) {
				if err := users.UpdateUser(ctx, user); err != nil {
					return nil, err
				}
			}
			return user, nil
		}
		if !errors.Is(err, session.ErrNotFound) {
			return nil, err
		}
	}

	if guest != nil {
		return s.adoptGuest(ctx, guest, session.Account{Provider: method, ProviderAccountID: id.Subject}, id)
	}
	user, err := users.CreateUser(ctx, session.NewUser{Profile: session.Profile{
		Email: id.Email, EmailVerified: id.EmailVerified, Name: id.Name, Picture: id.Picture,
	}})
	if err != nil {
		return nil, err
	}
	if err := users.CreateAccount(ctx, session.Account{Provider: method, ProviderAccountID: id.Subject, UserID: user.ID}); err != nil {
		// Lost a race to a concurrent first sign-in: drop this user.
		_ = users.RemoveUser(ctx, user.ID)
		return nil, err
	}
	return user, nil
}

// fillProfile copies what p lacks from id and reports whether p changed. An
// email is only marked verified when the method verified that same email.
func fillProfile(p *session.Profile, id provider.Identity) bool {
	changed := false
	if p.Email == "" && id.Email != "" {
		p.Email, p.EmailVerified, changed = id.Email, id.EmailVerified, true
	} else if p.Email == id.Email && id.EmailVerified && !p.EmailVerified {
		p.EmailVerified, changed = true, true
	}
	if p.Name == "" && id.Name != "" {
		p.Name, changed = id.Name, true
	}
	if p.Picture == "" && id.Picture != "" {
		p.Picture, changed = id.Picture, true
	}
	return changed
}

// clipIdentity drops profile fields a method sent over the store's size
// limits rather than failing the sign-in on them.
func clipIdentity(id provider.Identity) provider.Identity {
	if len(id.Email) > session.MaxEmailBytes {
		id.Email, id.EmailVerified = "", false
	}
	if len(id.Name) > session.MaxNameBytes {
		id.Name = ""
	}
	if len(id.Picture) > session.MaxPictureBytes {
		id.Picture = ""
	}
	return id
}

// What LinkAccount refuses; nothing changes then.
var (
	// ErrAlreadyLinked: the account is the user's already.
	ErrAlreadyLinked = errors.New("signin: the account is linked to this user already")
	// ErrAccountInUse: the account belongs to another user.
	ErrAccountInUse = errors.New("signin: the account belongs to another user")
	// ErrVerifyFirst: the user has an email it has not verified
	// (VerifyFirst).
	ErrVerifyFirst = errors.New("signin: the user's email is not verified")
)

// VerifyFirst reports whether user must verify its email before another
// sign-in method may be linked: it is no guest and has an email it never
// proved. Otherwise whoever signed up with someone else's address could
// link a method of their own and keep it after the owner takes the
// account back (account pre-hijacking).
func VerifyFirst(user *session.User) bool {
	return !user.Anonymous && user.Profile.Email != "" && !user.Profile.EmailVerified
}

// LinkAccount binds the account id of the provider named name to userID,
// filling gaps in the user's profile; a guest becomes a full user in
// place. It returns ErrAlreadyLinked, ErrAccountInUse, ErrVerifyFirst, or
// an error wrapping session.ErrNotFound when the store has no such user
// (the app signed it in), and then changes nothing.
func (s *Service) LinkAccount(ctx context.Context, userID, name string, id provider.Identity) error {
	users := s.cfg.Users
	acct, err := users.GetAccount(ctx, name, id.Subject)
	switch {
	case err == nil && acct.UserID == userID:
		return ErrAlreadyLinked
	case err == nil:
		return ErrAccountInUse
	case !errors.Is(err, session.ErrNotFound):
		return fmt.Errorf("reading the account: %w", err)
	}
	user, err := users.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("reading the user: %w", err)
	}
	if VerifyFirst(user) {
		return ErrVerifyFirst
	}
	id = clipIdentity(id)
	id.Email = session.NormalizeEmail(id.Email)
	newAcct := session.Account{Provider: name, ProviderAccountID: id.Subject, UserID: user.ID}
	if user.Anonymous {
		_, err = s.adoptGuest(ctx, user, newAcct, id)
	} else if err = users.CreateAccount(ctx, newAcct); err == nil && fillProfile(&user.Profile, id) {
		// Gaps only; a failure here leaves the link made.
		if uerr := users.UpdateUser(ctx, user); uerr != nil {
			s.logger.Warn("account link could not update the profile", zap.Error(uerr))
		}
	}
	if errors.Is(err, session.ErrAccountExists) {
		return ErrAccountInUse
	}
	if err != nil {
		return fmt.Errorf("binding the account: %w", err)
	}
	return nil
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
