// Package passkey owns the gateway's WebAuthn relying party: the options
// of provider passkey, the registration and assertion ceremonies
// (github.com/go-webauthn/webauthn) for signing in with a discoverable
// passkey, for a passkey as the second factor and for adding one, and the
// one script the pages that use them load. A ceremony's state is a value
// the caller keeps in the browser (sealed in a cookie), so nothing is
// written to the store before a user is known. No Caddy import.
package passkey

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// Option values of provider passkey.
const (
	VerificationPreferred   = "preferred"
	VerificationRequired    = "required"
	VerificationDiscouraged = "discouraged"
	AttachmentPlatform      = "platform"
	AttachmentCrossPlatform = "cross-platform"
)

// CeremonyTTL is how long a ceremony may take, from its options to its
// answer.
const CeremonyTTL = 5 * time.Minute

// Config is provider passkey's options.
type Config struct {
	// UserVerification is what the authenticator must do to check that
	// its user is there (a PIN, a fingerprint): "preferred" (ask, accept
	// without), "required" (refuse an assertion without it) or
	// "discouraged". Default: preferred.
	UserVerification string `json:"user_verification,omitempty"`
	// Origins are the origins besides the issuer's that may run the
	// ceremonies (another subdomain of the RP ID, a native app's origin).
	// Default: none.
	Origins []string `json:"origins,omitempty"`
	// Attachment limits new passkeys to "platform" authenticators (built
	// into the device) or "cross-platform" ones (security keys, phones).
	// Default: "", either.
	Attachment string `json:"attachment,omitempty"`
}

// Validate checks the options that are set.
func (c Config) Validate() error {
	switch c.UserVerification {
	case "", VerificationPreferred, VerificationRequired, VerificationDiscouraged:
	default:
		return fmt.Errorf("user_verification %q is unknown: use preferred, required or discouraged", c.UserVerification)
	}
	switch c.Attachment {
	case "", AttachmentPlatform, AttachmentCrossPlatform:
	default:
		return fmt.Errorf("attachment %q is unknown: use platform or cross-platform (or leave it out for either)", c.Attachment)
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("origin %q is not an origin: use scheme://host[:port], e.g. https://login.example.com", o)
		}
	}
	return nil
}

// RP is the relying party of one site.
type RP struct {
	wa *webauthn.WebAuthn
	uv protocol.UserVerificationRequirement
}

// New builds the relying party for the site at origin (the issuer's
// scheme://host[:port]): its RP ID is origin's host, and the ceremonies
// may run on origin and cfg.Origins. name is what authenticators show.
func New(cfg Config, origin, name string) (*RP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("passkey: the site's origin %q has no host", origin)
	}
	if cfg.UserVerification == "" {
		cfg.UserVerification = VerificationPreferred
	}
	uv := protocol.UserVerificationRequirement(cfg.UserVerification)
	rk := true
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: name,
		RPOrigins:     append([]string{strings.TrimSuffix(origin, "/")}, cfg.Origins...),
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			AuthenticatorAttachment: protocol.AuthenticatorAttachment(cfg.Attachment),
			RequireResidentKey:      &rk,
			ResidentKey:             protocol.ResidentKeyRequirementRequired,
			UserVerification:        uv,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &RP{wa: wa, uv: uv}, nil
}

// Kinds of ceremony.
const (
	KindRegister = "register" // add a passkey to a signed-in user
	KindSignIn   = "signin"   // sign in with a discoverable passkey
	KindFactor   = "factor"   // a passkey as the second factor of a known user
)

// Ceremony is a ceremony's state between its options and the browser's
// answer. The caller keeps it sealed in the browser (it holds no secret,
// but must not be changed) and hands it back to the Finish that matches
// Kind.
type Ceremony struct {
	Kind string `json:"k"`
	// UserID is the user a register or factor ceremony is for.
	UserID string `json:"u,omitempty"`
	// Name is the name a registration gives the passkey.
	Name    string               `json:"n,omitempty"`
	Session webauthn.SessionData `json:"s"`
}

// Expired reports whether the ceremony is over at now.
func (c *Ceremony) Expired(now time.Time) bool {
	return c.Session.Expires.IsZero() || !now.Before(c.Session.Expires)
}

// user is a gateway user as go-webauthn sees one: its user handle is the
// user ID (random, no personal data).
type user struct {
	id, name, display string
	creds             []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return []byte(u.id) }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.display }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// newUser is userID with its stored passkeys as credentials; a stored
// passkey that does not decode is left out (and cannot sign in).
func newUser(userID, name, display string, passkeys []session.Passkey) *user {
	u := &user{id: userID, name: name, display: display}
	for _, p := range passkeys {
		var c webauthn.Credential
		if json.Unmarshal(p.Credential, &c) != nil || EncodeID(c.ID) != p.ID {
			continue
		}
		c.Authenticator.SignCount = p.SignCount
		c.Flags.BackupEligible, c.Flags.BackupState = p.BackupEligible, p.BackupState
		u.creds = append(u.creds, c)
	}
	return u
}

// EncodeID is a credential ID as the store and the pages name it.
func EncodeID(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// BeginRegistration starts adding a passkey named keyName for the user
// (name and display are what the authenticator shows of the account),
// excluding the passkeys it has. It returns the options for
// navigator.credentials.create, as JSON.
func (rp *RP) BeginRegistration(userID, name, display, keyName string, existing []session.Passkey) ([]byte, Ceremony, error) {
	u := newUser(userID, name, display, existing)
	creation, sess, err := rp.wa.BeginRegistration(u, webauthn.WithExclusions(webauthn.Credentials(u.creds).CredentialDescriptors()))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("passkey: %w", err)
	}
	opts, err := json.Marshal(creation)
	if err != nil {
		return nil, Ceremony{}, err
	}
	return opts, Ceremony{Kind: KindRegister, UserID: userID, Name: keyName, Session: *sess}, nil
}

// ErrCeremony means the browser's answer does not check out (wrong
// challenge, origin or RP ID, bad signature, user verification missing
// where it is required, an unknown or cloned credential, an expired
// ceremony). Its text is the reason, fit for a log line, never a page.
var ErrCeremony = errors.New("passkey: the passkey's answer does not check out")

func refused(reason string, err error) error {
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Details != "" {
		reason += ": " + perr.Details
	} else if err != nil {
		reason += ": " + err.Error()
	}
	return fmt.Errorf("%w (%s)", ErrCeremony, reason)
}

// FinishRegistration checks the browser's answer (response, the JSON of
// the PublicKeyCredential) to a KindRegister ceremony for userID and
// returns the passkey to store.
func (rp *RP) FinishRegistration(c Ceremony, userID, name, display string, existing []session.Passkey, response []byte, now time.Time) (session.Passkey, error) {
	if c.Kind != KindRegister || c.UserID != userID || c.Expired(now) {
		return session.Passkey{}, refused("the ceremony is not this user's registration, or it expired", nil)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return session.Passkey{}, refused("the answer does not parse", err)
	}
	u := newUser(userID, name, display, existing)
	cred, err := rp.wa.CreateCredential(u, c.Session, parsed)
	if err != nil {
		return session.Passkey{}, refused("the registration does not verify", err)
	}
	id := EncodeID(cred.ID)
	for _, p := range existing {
		if p.ID == id {
			return session.Passkey{}, refused("the user has this passkey already", nil)
		}
	}
	// What assertions need: the key, its flags and transports; not the
	// attestation's raw parts.
	cred.Attestation = webauthn.CredentialAttestation{}
	raw, err := json.Marshal(cred)
	if err != nil {
		return session.Passkey{}, err
	}
	keyName := strings.TrimSpace(c.Name)
	if keyName == "" {
		keyName = "Passkey"
	}
	return session.Passkey{
		ID: id, Name: keyName, Credential: raw, SignCount: cred.Authenticator.SignCount,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, CreatedAt: now,
	}, nil
}

// BeginSignIn starts a sign-in with a discoverable passkey: the browser
// offers the site's passkeys, and the answer names its user. conditional
// asks for the autofill form (mediation "conditional").
func (rp *RP) BeginSignIn(conditional bool) ([]byte, Ceremony, error) {
	mediation := protocol.MediationDefault
	if conditional {
		mediation = protocol.MediationConditional
	}
	assertion, sess, err := rp.wa.BeginDiscoverableMediatedLogin(mediation, webauthn.WithUserVerification(rp.uv))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("passkey: %w", err)
	}
	opts, err := json.Marshal(assertion)
	if err != nil {
		return nil, Ceremony{}, err
	}
	return opts, Ceremony{Kind: KindSignIn, Session: *sess}, nil
}

// BeginFactor starts an assertion by one of userID's passkeys: the second
// factor after a first one, or a re-authentication.
func (rp *RP) BeginFactor(userID string, passkeys []session.Passkey) ([]byte, Ceremony, error) {
	u := newUser(userID, userID, userID, passkeys)
	if len(u.creds) == 0 {
		return nil, Ceremony{}, errors.New("passkey: the user has no passkey")
	}
	assertion, sess, err := rp.wa.BeginLogin(u, webauthn.WithUserVerification(rp.uv))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("passkey: %w", err)
	}
	opts, err := json.Marshal(assertion)
	if err != nil {
		return nil, Ceremony{}, err
	}
	return opts, Ceremony{Kind: KindFactor, UserID: userID, Session: *sess}, nil
}

// Assertion is a checked assertion: which user's which passkey, and what
// the authenticator said. The caller records it
// (session.SecondFactors.UsePasskey), which refuses a counter that did
// not move.
type Assertion struct {
	UserID  string
	Passkey session.Passkey
	// SignCount is the authenticator's new counter.
	SignCount uint32
	// UserVerified: the authenticator checked its user (PIN, biometric).
	UserVerified bool
	// BackupEligible: a synced passkey; BackupState: backed up now.
	BackupEligible bool
	BackupState    bool
}

// Lookup returns a user's passkeys for a sign-in: a discoverable
// assertion names its user by the user handle.
type Lookup func(userID string) ([]session.Passkey, error)

// UserHandle reads the user handle (the user ID) of a sign-in answer
// without checking it, so the caller can look the user's passkeys up.
func UserHandle(response []byte) (string, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return "", refused("the answer does not parse", err)
	}
	if len(parsed.Response.UserHandle) == 0 {
		return "", refused("the answer names no user", nil)
	}
	return string(parsed.Response.UserHandle), nil
}

// FinishSignIn checks the answer to a KindSignIn ceremony, the user's
// passkeys read by lookup.
func (rp *RP) FinishSignIn(c Ceremony, response []byte, lookup Lookup, now time.Time) (Assertion, error) {
	if c.Kind != KindSignIn || c.Expired(now) {
		return Assertion{}, refused("the ceremony is no passkey sign-in, or it expired", nil)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Assertion{}, refused("the answer does not parse", err)
	}
	var found *user
	_, cred, err := rp.wa.ValidatePasskeyLogin(func(rawID, handle []byte) (webauthn.User, error) {
		passkeys, err := lookup(string(handle))
		if err != nil {
			return nil, err
		}
		found = newUser(string(handle), "", "", passkeys)
		return found, nil
	}, c.Session, parsed)
	if err != nil {
		return Assertion{}, refused("the sign-in does not verify", err)
	}
	return rp.assertion(found.id, found, cred, parsed)
}

// FinishFactor checks the answer to a KindFactor ceremony for userID.
func (rp *RP) FinishFactor(c Ceremony, userID string, passkeys []session.Passkey, response []byte, now time.Time) (Assertion, error) {
	if c.Kind != KindFactor || c.UserID != userID || c.Expired(now) {
		return Assertion{}, refused("the ceremony is not this user's factor, or it expired", nil)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Assertion{}, refused("the answer does not parse", err)
	}
	u := newUser(userID, userID, userID, passkeys)
	cred, err := rp.wa.ValidateLogin(u, c.Session, parsed)
	if err != nil {
		return Assertion{}, refused("the assertion does not verify", err)
	}
	return rp.assertion(userID, u, cred, parsed)
}

// assertion checks what go-webauthn leaves to the relying party (the
// counter, WebAuthn §7.2 step 22: a counter that did not move is a clone
// or a replay, refused) and names the stored passkey.
func (rp *RP) assertion(userID string, u *user, cred *webauthn.Credential, parsed *protocol.ParsedCredentialAssertionData) (Assertion, error) {
	if cred.Authenticator.CloneWarning {
		return Assertion{}, refused("the signature counter did not move past the stored one", nil)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	if rp.uv == protocol.VerificationRequired && !flags.HasUserVerified() {
		return Assertion{}, refused("user verification is required", nil)
	}
	id := EncodeID(cred.ID)
	var stored session.Passkey
	for _, c := range u.creds {
		if bytes.Equal(c.ID, cred.ID) {
			stored = session.Passkey{ID: id}
		}
	}
	if stored.ID == "" {
		return Assertion{}, refused("the credential is not the user's", nil)
	}
	return Assertion{
		UserID: userID, Passkey: stored, SignCount: parsed.Response.AuthenticatorData.Counter,
		UserVerified: flags.HasUserVerified(), BackupEligible: flags.HasBackupEligible(), BackupState: flags.HasBackupState(),
	}, nil
}

// ScriptPath is where the gateway serves Script.
const ScriptPath = "/auth/passkey.js"

// Script is the pages' one script (passkey.js).
//
//go:embed passkey.js
var Script []byte
