package control

import (
	"context"
	"errors"
	"net/http"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// FactorsInfo is a user's second factors as the API shows them: what they
// are and when they were used, never a secret, a key or a code. Times are
// Unix milliseconds.
type FactorsInfo struct {
	// TOTP is set when the user has an authenticator app.
	TOTP *TOTPInfo `json:"totp,omitempty"`
	// BackupCodes is how many unused backup codes are left.
	BackupCodes int           `json:"backupCodes"`
	Passkeys    []PasskeyInfo `json:"passkeys"`
}

// TOTPInfo is an authenticator app.
type TOTPInfo struct {
	CreatedAt int64 `json:"createdAt"`
}

// PasskeyInfo is one passkey.
type PasskeyInfo struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"createdAt"`
	// LastUsedAt is 0 until its first use.
	LastUsedAt int64 `json:"lastUsedAt,omitempty"`
	// Synced: the authenticator may copy it to the user's other devices
	// (backup eligible).
	Synced bool `json:"synced"`
}

// errNoFactors means the realm keeps no second factors.
var errNoFactors = errorf(http.StatusNotFound, "no_second_factors", "this realm keeps no second factors (no sign-in providers)")

// hasRecord is nil when the realm has the user's record: second factors
// belong to a record (a user known by sessions only has none).
func hasRecord(ctx context.Context, realm Realm, userID string) error {
	_, err := realm.Users.GetUser(ctx, userID)
	if errors.Is(err, session.ErrNotFound) {
		return ErrUserNotFound
	}
	return err
}

// ListFactors returns the user's second factors.
func ListFactors(ctx context.Context, realm Realm, userID string) (*FactorsInfo, error) {
	if realm.Factors == nil {
		return nil, errNoFactors
	}
	if err := hasRecord(ctx, realm, userID); err != nil {
		return nil, err
	}
	f, err := realm.Factors.Factors(ctx, userID)
	if err != nil {
		return nil, err
	}
	info := &FactorsInfo{BackupCodes: f.BackupCodes, Passkeys: make([]PasskeyInfo, 0, len(f.Passkeys))}
	if f.TOTP != nil {
		info.TOTP = &TOTPInfo{CreatedAt: f.TOTP.CreatedAt.UnixMilli()}
	}
	for _, p := range f.Passkeys {
		pi := PasskeyInfo{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt.UnixMilli(), Synced: p.BackupEligible}
		if !p.LastUsedAt.IsZero() {
			pi.LastUsedAt = p.LastUsedAt.UnixMilli()
		}
		info.Passkeys = append(info.Passkeys, pi)
	}
	return info, nil
}

// ResetFactors removes every second factor of the user and its backup
// codes: the recovery for a user who lost them. The user's next sign-in
// asks for no second factor (or, under second_factor required, for a new
// one), and no browser stays remembered past the challenge
// (remember_device): the user's browsers are forgotten.
func ResetFactors(ctx context.Context, realm Realm, userID string) error {
	if realm.Factors == nil {
		return errNoFactors
	}
	if err := hasRecord(ctx, realm, userID); err != nil {
		return err
	}
	if err := realm.Factors.ResetFactors(ctx, userID); err != nil {
		return err
	}
	if d, ok := realm.Factors.(session.Devices); ok {
		return d.ForgetDevices(ctx, userID)
	}
	return nil
}
