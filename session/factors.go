package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A user's second factors: an authenticator app (TOTP) with the last time
// step it accepted, single-use backup codes, and passkeys (WebAuthn
// credentials). The store keeps what the caller hands it and checks only
// what must be atomic: a TOTP step is accepted once and in order (RFC
// 6238 §5.2), a backup code is used once, and a passkey's signature
// counter only moves forward. The TOTP secret comes sealed by the caller
// (secondfactor), backup codes hashed: the store never sees either in
// clear. PurgeUser removes them with the user.

// ErrSignCount is returned by UsePasskey when the authenticator's
// signature counter did not move past the stored one: a sign that the
// credential was cloned (WebAuthn §6.1.1), or a replayed assertion.
var ErrSignCount = errors.New("session: the passkey's signature counter went backwards")

var errTooManyPasskeys = fmt.Errorf("%w: a user has at most %d passkeys: remove one first", ErrInvalidUser, MaxPasskeysPerUser)

// Limits of second factors.
const (
	// MaxPasskeysPerUser bounds a user's passkeys.
	MaxPasskeysPerUser = 20
	// MaxBackupCodes bounds a user's backup codes.
	MaxBackupCodes = 16
	// MaxPasskeyNameBytes bounds a passkey's name.
	MaxPasskeyNameBytes = 64
	// MaxPasskeyIDBytes bounds a credential ID in base64url (WebAuthn
	// allows 1023 raw bytes).
	MaxPasskeyIDBytes = 1364
	// MaxPasskeyCredentialBytes bounds a passkey's stored credential.
	MaxPasskeyCredentialBytes = 4096
	maxFactorHashBytes        = 128
)

// TOTP is a user's authenticator app.
type TOTP struct {
	// Secret is the shared secret, sealed by the caller; opaque here, at
	// most MaxSecretBytes.
	Secret    string
	CreatedAt time.Time
}

// Passkey is a WebAuthn credential of a user.
type Passkey struct {
	// ID is the credential ID, base64url without padding.
	ID string
	// Name is the user's name for it ("MacBook", "YubiKey").
	Name string
	// Credential is what the relying party keeps to check assertions
	// (public key, attestation, transports), opaque here.
	Credential []byte
	// SignCount is the authenticator's signature counter at the last use.
	SignCount uint32
	// BackupEligible: the authenticator may sync the credential to other
	// devices (a synced passkey); BackupState: it is backed up now.
	BackupEligible bool
	BackupState    bool
	CreatedAt      time.Time
	// LastUsedAt is zero until the first sign-in with it.
	LastUsedAt time.Time
}

// UserFactors are all of a user's second factors, as one read gets them.
type UserFactors struct {
	// TOTP is nil when the user has no authenticator app.
	TOTP *TOTP
	// LastTOTPStep is the last time step a code was accepted for (0:
	// none yet).
	LastTOTPStep int64
	// BackupCodes is how many unused backup codes are left.
	BackupCodes int
	// Passkeys, oldest first.
	Passkeys []Passkey
}

// Any reports whether the user has a second factor: an authenticator app
// or a passkey. Backup codes alone are none (they back one up).
func (f *UserFactors) Any() bool { return f != nil && (f.TOTP != nil || len(f.Passkeys) > 0) }

// Passkey returns the user's passkey with credential ID id.
func (f *UserFactors) Passkey(id string) (Passkey, bool) {
	for _, p := range f.Passkeys {
		if p.ID == id {
			return p, true
		}
	}
	return Passkey{}, false
}

// SecondFactors keeps users' second factors; both stores implement it.
// Errors follow UserStore's rule.
type SecondFactors interface {
	// Factors returns all of the user's second factors in one read; an
	// empty UserFactors for a user with none (or no user).
	Factors(ctx context.Context, userID string) (*UserFactors, error)

	// SetTOTP enrols (or replaces) the user's authenticator app.
	SetTOTP(ctx context.Context, userID string, t TOTP) error
	// SwapTOTPSecret replaces the sealed secret old with new (the same
	// secret sealed under another key) and reports whether it did: false
	// when the stored secret is no longer old.
	SwapTOTPSecret(ctx context.Context, userID, old, new string) (bool, error)
	// AcceptTOTPStep records that a code of time step step was accepted,
	// and reports false (recording nothing) when a code of that step or a
	// later one was accepted before, or the user has no authenticator app.
	AcceptTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	// RemoveTOTP removes the user's authenticator app; ErrNotFound if
	// there is none.
	RemoveTOTP(ctx context.Context, userID string) error

	// SetBackupCodes replaces the user's backup codes with these hashes.
	SetBackupCodes(ctx context.Context, userID string, hashes []string) error
	// UseBackupCode removes the backup code with this hash and reports
	// whether the user had it.
	UseBackupCode(ctx context.Context, userID, hash string) (bool, error)

	// AddPasskey adds a passkey: ErrAccountExists if the user has one of
	// that ID, ErrInvalidUser past MaxPasskeysPerUser.
	AddPasskey(ctx context.Context, userID string, p Passkey) error
	// UsePasskey records a sign-in with the passkey at at, with the
	// authenticator's counter and backup state: ErrNotFound if the user
	// has no such passkey, ErrSignCount (recording nothing) if signCount
	// is not past the stored counter while either is non-zero.
	UsePasskey(ctx context.Context, userID, id string, signCount uint32, backupState bool, at time.Time) error
	// RemovePasskey removes a passkey; ErrNotFound if there is none.
	RemovePasskey(ctx context.Context, userID, id string) error

	// ResetFactors removes every second factor of the user and its backup
	// codes (an operator's reset; PurgeUser does it too).
	ResetFactors(ctx context.Context, userID string) error
}

var (
	_ SecondFactors = (*MemoryStore)(nil)
	_ SecondFactors = (*RedisStore)(nil)
)

func (t TOTP) validate() error {
	if t.Secret == "" || len(t.Secret) > MaxSecretBytes {
		return fmt.Errorf("%w: a TOTP secret must be 1 to %d bytes", ErrInvalidUser, MaxSecretBytes)
	}
	return nil
}

func validateBackupHashes(hashes []string) error {
	if len(hashes) > MaxBackupCodes {
		return fmt.Errorf("%w: %d backup codes, the limit is %d", ErrInvalidUser, len(hashes), MaxBackupCodes)
	}
	for _, h := range hashes {
		if err := validateFactorHash(h); err != nil {
			return err
		}
	}
	return nil
}

func validateFactorHash(h string) error {
	if h == "" || len(h) > maxFactorHashBytes || strings.ContainsAny(h, ":\x00") {
		return fmt.Errorf("%w: a backup code hash must be 1 to %d bytes without ':'", ErrInvalidUser, maxFactorHashBytes)
	}
	return nil
}

func validatePasskeyID(id string) error {
	if id == "" || len(id) > MaxPasskeyIDBytes || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return fmt.Errorf("%w: a passkey ID must be 1 to %d base64url characters", ErrInvalidUser, MaxPasskeyIDBytes)
	}
	return nil
}

func (p Passkey) validate() error {
	if err := validatePasskeyID(p.ID); err != nil {
		return err
	}
	switch {
	case len(p.Name) > MaxPasskeyNameBytes:
		return fmt.Errorf("%w: a passkey name is %d bytes, the limit is %d", ErrInvalidUser, len(p.Name), MaxPasskeyNameBytes)
	case len(p.Credential) == 0 || len(p.Credential) > MaxPasskeyCredentialBytes:
		return fmt.Errorf("%w: a passkey credential must be 1 to %d bytes", ErrInvalidUser, MaxPasskeyCredentialBytes)
	}
	return nil
}

// signCountAdvances is WebAuthn §7.2 step 22's rule: a counter must grow,
// unless the authenticator keeps none (both zero).
func signCountAdvances(stored, got uint32) bool {
	return got > stored || (got == 0 && stored == 0)
}

func sortPasskeys(ps []Passkey) {
	slices.SortFunc(ps, func(a, b Passkey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
