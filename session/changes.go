package session

import "context"

// UserChange is one change of how a user signs in, or of what proves the
// user's address: user.updated says which (events), and the user is
// mailed.
type UserChange struct {
	Kind string
	// Provider names the sign-in method (or second factor) added or
	// removed.
	Provider string
}

// Kinds of UserChange.
const (
	ChangeMethodAdded     = "method-added"
	ChangeMethodRemoved   = "method-removed"
	ChangePasswordChanged = "password-changed"
	ChangePasswordReset   = "password-reset"
	ChangeEmailVerified   = "email-verified"
	// A second factor added or removed (Provider: passkey or totp), and
	// new backup codes.
	ChangeFactorAdded   = "factor-added"
	ChangeFactorRemoved = "factor-removed"
	ChangeBackupCodes   = "backup-codes-replaced"
)

// ChangeRecorder is implemented by a store wrapper that announces user
// changes (the events store); the stores themselves do not: callers check
// for it.
type ChangeRecorder interface {
	// UserChanged announces that the user's sign-in methods or proofs
	// changed as changes say; it changes nothing in the store.
	UserChanged(ctx context.Context, userID string, changes ...UserChange)
}
