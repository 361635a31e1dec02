package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrAccountExists is returned by CreateAccount when the provider account is
// already bound to a user.
var ErrAccountExists = errors.New("session: account already exists")

// ErrInvalidUser wraps a rejected user or account input (a field over its
// size limit, a missing ID).
var ErrInvalidUser = errors.New("session: invalid user")

// Size limits for users and accounts, on top of the session ones.
const (
	MaxProviderAccountIDBytes = 512
	MaxSecretBytes            = 512
	MaxOnceValueBytes         = 4096
	MaxRateKeyBytes           = 512
	// userIDBytes of randomness make a user ID (base64url, 22 characters).
	userIDBytes = 16
)

// User is a person who signed in with one or more accounts. Its profile
// becomes the claims of every session it starts.
type User struct {
	// ID is stable and random; it is the JWT's sub.
	ID        string
	CreatedAt time.Time
	// Profile.Email is normalised (NormalizeEmail).
	Profile Profile
	// Anonymous marks a guest: a user with no email and no account yet.
	// A guest may carry an expiry (NewUser.TTL, TouchUser); turning
	// Anonymous off with UpdateUser removes it.
	Anonymous bool
	// Banned users cannot sign in (Banner.SetBanned sets it; UpdateUser
	// keeps it); BannedAt is when.
	Banned   bool
	BannedAt time.Time
}

// NewUser is the input to UserStore.CreateUser.
type NewUser struct {
	Profile   Profile
	Anonymous bool
	// TTL, if positive, removes the user this long after creation unless
	// TouchUser pushes it back. Only guests have one.
	TTL time.Duration
}

// Account binds a provider's account to a user: (Provider,
// ProviderAccountID) → UserID. Secret holds what the provider needs to check
// a sign-in, such as a password hash; empty for OAuth accounts.
type Account struct {
	Provider          string
	ProviderAccountID string
	UserID            string
	Secret            string
}

// UserStore keeps users, their accounts, single-use values and rate-limit
// counters, in the same backend as the sessions. Errors follow Store's rule:
// anything but ErrNotFound, ErrAccountExists and ErrInvalidUser wraps
// ErrUnavailable. Every key is one backend key, so each step is atomic on
// Redis Cluster too.
type UserStore interface {
	// CreateUser stores a new user under a new random ID. A verified email
	// is indexed for UserByEmail unless another user holds it already.
	CreateUser(ctx context.Context, n NewUser) (*User, error)
	// GetUser returns the user; ErrNotFound if there is none.
	GetUser(ctx context.Context, userID string) (*User, error)
	// UpdateUser replaces an existing user's profile and Anonymous flag;
	// ErrNotFound if the user does not exist. A guest's expiry is kept
	// while it stays Anonymous and removed when it stops being one.
	UpdateUser(ctx context.Context, u *User) error
	// TouchUser moves a guest's expiry to ttl from now (a guest in use);
	// it leaves any other user as it is. ErrNotFound if the user does not
	// exist or has expired.
	TouchUser(ctx context.Context, userID string, ttl time.Duration) error
	// RemoveUser deletes the user record and its email index entry (not its
	// accounts or sessions); no error if it is already gone.
	RemoveUser(ctx context.Context, userID string) error
	// PurgeUser removes everything of the user: its email index entry, all
	// its accounts, its pending single-use values (PutOnceFor), its
	// remembered browsers (Devices), its second factors (SecondFactors),
	// all its sessions (as Store.DeleteUser does, announced to every
	// instance) and, last, the user record, so that a purge that fails
	// half-way can be run again; ErrNotFound if there is no user.
	PurgeUser(ctx context.Context, userID string) error
	// UserByEmail returns the user whose verified email is email (normalised
	// first); ErrNotFound if no user has it verified.
	UserByEmail(ctx context.Context, email string) (*User, error)

	// CreateAccount binds an account to its user, once: ErrAccountExists
	// if the provider account is bound already.
	CreateAccount(ctx context.Context, a Account) error
	// GetAccount returns the account; ErrNotFound if it is not bound.
	GetAccount(ctx context.Context, provider, providerAccountID string) (*Account, error)
	// AccountsOf returns the accounts bound to the user, sorted by provider
	// then provider account ID; none (and no error) for an unknown user.
	AccountsOf(ctx context.Context, userID string) ([]Account, error)
	// DeleteAccount unbinds the account; ErrNotFound if it is not bound.
	// It refuses nothing else: callers keep a user's last sign-in method.
	DeleteAccount(ctx context.Context, provider, providerAccountID string) error

	// PutOnce stores value under secret for ttl. The backend keys it by a
	// hash of secret, never the secret itself.
	PutOnce(ctx context.Context, secret string, value []byte, ttl time.Duration) error
	// PutOnceFor is PutOnce for a value that belongs to the user userID (a
	// mailed link or code): it is indexed under the user, and PurgeUser
	// removes it. ErrNotFound if the user does not exist, or is purged
	// while the value is written (then nothing is left of it). The index
	// forgets a value when it expires; a taken value's entry stays until
	// then, harmlessly.
	PutOnceFor(ctx context.Context, userID, secret string, value []byte, ttl time.Duration) error
	// TakeOnce returns the value stored under secret and deletes it in the
	// same atomic step, so it is returned once at most; ErrNotFound if it
	// is missing, taken or expired.
	TakeOnce(ctx context.Context, secret string) ([]byte, error)
	// PeekOnce returns the value stored under secret without taking it;
	// ErrNotFound if it is missing, taken or expired.
	PeekOnce(ctx context.Context, secret string) ([]byte, error)

	// RateHit counts one event for key in a fixed window starting at the
	// window's first event and reports whether it is within limit (the
	// limit-th event is allowed, the next is not).
	RateHit(ctx context.Context, key string, limit int, window time.Duration) (allowed bool, err error)
	// RateReset forgets key's events.
	RateReset(ctx context.Context, key string) error
}

// NormalizeEmail trims and lowercases an email address: the form every
// lookup by email uses.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

func newUserID() (string, error) {
	var raw [userIDBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("%w: reading random bytes: %w", ErrUnavailable, err)
	}
	return b64.EncodeToString(raw[:]), nil
}

// hashKey names a backend key after a one-way hash of its parts, so keys
// stay short and hold no email, secret or provider subject.
func hashKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return b64.EncodeToString(h.Sum(nil))
}

func validateProfile(p Profile) error {
	limits := []struct {
		field string
		value string
		max   int
	}{
		{"email", p.Email, MaxEmailBytes},
		{"name", p.Name, MaxNameBytes},
		{"picture", p.Picture, MaxPictureBytes},
	}
	for _, l := range limits {
		if len(l.value) > l.max {
			return fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrInvalidUser, l.field, len(l.value), l.max)
		}
	}
	return nil
}

func (a Account) validate() error {
	switch {
	case a.Provider == "" || a.ProviderAccountID == "" || a.UserID == "":
		return fmt.Errorf("%w: an account needs a provider, a provider account ID and a user ID", ErrInvalidUser)
	case len(a.Provider) > MaxProviderBytes:
		return fmt.Errorf("%w: provider is %d bytes, the limit is %d", ErrInvalidUser, len(a.Provider), MaxProviderBytes)
	case len(a.ProviderAccountID) > MaxProviderAccountIDBytes:
		return fmt.Errorf("%w: provider account ID is %d bytes, the limit is %d", ErrInvalidUser, len(a.ProviderAccountID), MaxProviderAccountIDBytes)
	case len(a.UserID) > MaxUserIDBytes:
		return fmt.Errorf("%w: user ID is %d bytes, the limit is %d", ErrInvalidUser, len(a.UserID), MaxUserIDBytes)
	case len(a.Secret) > MaxSecretBytes:
		return fmt.Errorf("%w: account secret is %d bytes, the limit is %d", ErrInvalidUser, len(a.Secret), MaxSecretBytes)
	}
	return nil
}

func sortAccounts(as []Account) {
	slices.SortFunc(as, func(a, b Account) int {
		if c := strings.Compare(a.Provider, b.Provider); c != 0 {
			return c
		}
		return strings.Compare(a.ProviderAccountID, b.ProviderAccountID)
	})
}

func validateOnce(secret string, value []byte, ttl time.Duration) error {
	switch {
	case secret == "":
		return fmt.Errorf("%w: a single-use value needs a secret", ErrInvalidUser)
	case len(value) > MaxOnceValueBytes:
		return fmt.Errorf("%w: single-use value is %d bytes, the limit is %d", ErrInvalidUser, len(value), MaxOnceValueBytes)
	case ttl < time.Millisecond:
		return fmt.Errorf("%w: a single-use value needs a TTL of at least 1ms", ErrInvalidUser)
	}
	return nil
}

func validateOwner(userID string) error {
	if userID == "" || len(userID) > MaxUserIDBytes {
		return fmt.Errorf("%w: a single-use value's owner must be a user ID of 1 to %d bytes", ErrInvalidUser, MaxUserIDBytes)
	}
	return nil
}

func validateRate(key string, limit int, window time.Duration) error {
	switch {
	case key == "" || len(key) > MaxRateKeyBytes:
		return fmt.Errorf("%w: a rate-limit key must be 1 to %d bytes", ErrInvalidUser, MaxRateKeyBytes)
	case limit < 1:
		return fmt.Errorf("%w: a rate limit must allow at least one event", ErrInvalidUser)
	case window < time.Millisecond:
		return fmt.Errorf("%w: a rate-limit window must be at least 1ms", ErrInvalidUser)
	}
	return nil
}
