// Package control is the backend's control over users and sessions: find a
// user, list and end its sessions, ban, unban and delete it. One
// http.Handler serves these operations under a prefix, for Caddy's admin
// endpoint (/convex-auth/, no authentication of its own) and for the site
// admin API (/auth/admin/, a Bearer secret). It imports no Caddy package.
package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// Sessions is what the operations need of a realm's session store.
type Sessions interface {
	List(ctx context.Context, userID string) ([]*session.Session, error)
	DeleteByID(ctx context.Context, userID, sessionID string) error
	DeleteUser(ctx context.Context, userID string, exceptSessionID string) (int, error)
}

// Users is what the operations need of a realm's user store.
type Users interface {
	GetUser(ctx context.Context, userID string) (*session.User, error)
	UserByEmail(ctx context.Context, email string) (*session.User, error)
	AccountsOf(ctx context.Context, userID string) ([]session.Account, error)
	SetBanned(ctx context.Context, userID string, banned bool) (*session.User, error)
	PurgeUser(ctx context.Context, userID string) error
}

// Realm is one live realm: its name, the issuers that serve it, and its
// store.
type Realm struct {
	// Name is the realm (configured, or the default issuer and application ID).
	Name string
	// Issuers are the issuers of the handlers serving the realm.
	Issuers  []string
	Sessions Sessions
	Users    Users
	// DeadLetters lists the realm's dead-lettered events (GET
	// /events/dead). Default: nil, the realm sends no events.
	DeadLetters http.Handler
	// RefreshClaims makes every instance drop the user's claims and cached
	// tokens (POST /users/{id}/claims/refresh). Default: nil, the realm
	// has no claims query.
	RefreshClaims func(ctx context.Context, userID string) error
	// Factors keeps the users' second factors (GET and DELETE
	// /users/{id}/factors). Default: nil, the realm keeps none.
	Factors session.SecondFactors
}

// ErrUserNotFound means the realm has neither a record nor a live session
// of the user.
var ErrUserNotFound = errors.New("control: user not found")

// ErrSessionNotFound means the user has no live session with that ID.
var ErrSessionNotFound = errors.New("control: session not found")

// UserInfo is a user as the API shows it. Times are Unix milliseconds.
type UserInfo struct {
	ID            string `json:"id"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"emailVerified"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
	CreatedAt     int64  `json:"createdAt,omitempty"`
	Banned        bool   `json:"banned"`
	BannedAt      int64  `json:"bannedAt,omitempty"`
	// Record is false for a user known only by live sessions (signed in
	// by the app upstream, no record in the gateway's store).
	Record bool `json:"record"`
}

// AccountInfo is one sign-in method of a user; never its secret.
type AccountInfo struct {
	Provider          string `json:"provider"`
	ProviderAccountID string `json:"providerAccountId"`
}

// UserDetail is a user with its accounts.
type UserDetail struct {
	User     UserInfo      `json:"user"`
	Accounts []AccountInfo `json:"accounts"`
}

func userInfo(u *session.User) UserInfo {
	info := UserInfo{
		ID: u.ID, Email: u.Profile.Email, EmailVerified: u.Profile.EmailVerified,
		Name: u.Profile.Name, Picture: u.Profile.Picture,
		CreatedAt: u.CreatedAt.UnixMilli(), Banned: u.Banned, Record: true,
	}
	if u.Banned && !u.BannedAt.IsZero() {
		info.BannedAt = u.BannedAt.UnixMilli()
	}
	return info
}

// FindByEmail returns the user whose verified email is email.
func FindByEmail(ctx context.Context, realm Realm, email string) (*UserDetail, error) {
	u, err := realm.Users.UserByEmail(ctx, email)
	if errors.Is(err, session.ErrNotFound) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	return detail(ctx, realm, u)
}

// GetUser returns the user with its accounts and whether it is banned.
func GetUser(ctx context.Context, realm Realm, userID string) (*UserDetail, error) {
	u, err := realm.Users.GetUser(ctx, userID)
	if errors.Is(err, session.ErrNotFound) {
		if err := sessionsOnly(ctx, realm, userID); err != nil {
			return nil, err
		}
		return &UserDetail{User: UserInfo{ID: userID}, Accounts: []AccountInfo{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return detail(ctx, realm, u)
}

func detail(ctx context.Context, realm Realm, u *session.User) (*UserDetail, error) {
	accts, err := realm.Users.AccountsOf(ctx, u.ID)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		return nil, err
	}
	d := &UserDetail{User: userInfo(u), Accounts: make([]AccountInfo, 0, len(accts))}
	for _, a := range accts {
		d.Accounts = append(d.Accounts, AccountInfo{Provider: a.Provider, ProviderAccountID: a.ProviderAccountID})
	}
	return d, nil
}

// sessionsOnly is nil when a user without a record has live sessions (an
// upstream sign-in), ErrUserNotFound when it has none.
func sessionsOnly(ctx context.Context, realm Realm, userID string) error {
	list, err := realm.Sessions.List(ctx, userID)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return ErrUserNotFound
	}
	return nil
}

// known is nil when the realm has the user's record or live sessions.
func known(ctx context.Context, realm Realm, userID string) error {
	_, err := realm.Users.GetUser(ctx, userID)
	if errors.Is(err, session.ErrNotFound) {
		return sessionsOnly(ctx, realm, userID)
	}
	return err
}

// ListSessions returns the user's live sessions, oldest first.
func ListSessions(ctx context.Context, realm Realm, userID string) ([]*session.Session, error) {
	list, err := realm.Sessions.List(ctx, userID)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		if err := known(ctx, realm, userID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// EndSessions ends all the user's sessions but exceptSessionID (empty: all)
// and returns how many it ended.
func EndSessions(ctx context.Context, realm Realm, userID, exceptSessionID string) (int, error) {
	if err := known(ctx, realm, userID); err != nil {
		return 0, err
	}
	return realm.Sessions.DeleteUser(ctx, userID, exceptSessionID)
}

// EndSession ends one of the user's sessions.
func EndSession(ctx context.Context, realm Realm, userID, sessionID string) error {
	if err := known(ctx, realm, userID); err != nil {
		return err
	}
	err := realm.Sessions.DeleteByID(ctx, userID, sessionID)
	if errors.Is(err, session.ErrNotFound) {
		return ErrSessionNotFound
	}
	return err
}

// Ban marks the user banned, so that every sign-in of it is refused, then
// ends all its sessions; it returns the user and how many sessions ended.
// The mark comes first so that no sign-in slips in between.
func Ban(ctx context.Context, realm Realm, userID string) (*session.User, int, error) {
	u, err := realm.Users.SetBanned(ctx, userID, true)
	if errors.Is(err, session.ErrNotFound) {
		return nil, 0, ErrUserNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	n, err := realm.Sessions.DeleteUser(session.WithRevokeReason(ctx, session.ReasonBan), userID, "")
	if err != nil {
		return nil, 0, fmt.Errorf("the user is banned but its sessions could not all be ended (ban again to retry): %w", err)
	}
	return u, n, nil
}

// Unban lets the user sign in again.
func Unban(ctx context.Context, realm Realm, userID string) (*session.User, error) {
	u, err := realm.Users.SetBanned(ctx, userID, false)
	if errors.Is(err, session.ErrNotFound) {
		return nil, ErrUserNotFound
	}
	return u, err
}

// DeleteUser removes the user, its accounts, its pending mailed links and
// codes, and its sessions.
func DeleteUser(ctx context.Context, realm Realm, userID string) error {
	if err := known(ctx, realm, userID); err != nil {
		return err
	}
	ctx = session.WithRevokeReason(ctx, session.ReasonUserDeleted)
	err := realm.Users.PurgeUser(ctx, userID)
	if errors.Is(err, session.ErrNotFound) {
		// Known by sessions only: end them.
		_, err = realm.Sessions.DeleteUser(ctx, userID, "")
	}
	return err
}
