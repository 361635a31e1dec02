package signin

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/convex-auth/caddy-convex-auth/secondfactor"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Setting up an authenticator app, as the account page and the challenge
// under second_factor required both do: a new secret shown as a QR code,
// kept sealed in the page's form (bound to who is enrolling) until the
// first code confirms it.

// enrolmentPurpose binds a sealed pending secret to its use.
const enrolmentPurpose = "convex_auth totp enrolment v1"

// EnrolmentTTL is how long a shown secret may wait for its first code.
const EnrolmentTTL = 15 * time.Minute

// TOTPSetup is what the pages show of a secret being set up (the
// "totp_setup" template).
type TOTPSetup struct {
	QR          template.HTML
	Secret, URI string
	// Pending is the secret sealed for the form, bound to who enrols.
	Pending string
	// Action is where the form posts the first code (field code) with
	// Pending (field pending).
	Action string
}

type pendingEnrolment struct {
	Secret  string `json:"s"`
	Bind    string `json:"b"`
	Expires int64  `json:"x"`
}

// NewTOTPSetup makes the setup page's part for user: secret when it is
// shown again after a wrong first code, else a new one. bind names who
// enrols (a session, a challenge): only the same bind can confirm it.
func (s *Service) NewTOTPSetup(user *session.User, secret, bind, action string) (TOTPSetup, error) {
	account := accountLabel(user)
	var en secondfactor.Enrolment
	var err error
	if secret == "" {
		if en, err = secondfactor.NewEnrolment(s.SiteName(), account); err != nil {
			return TOTPSetup{}, err
		}
	} else {
		en = secondfactor.EnrolmentFor(s.SiteName(), account, secret)
	}
	qr, err := secondfactor.QRCodeSVG(en.URI)
	if err != nil {
		return TOTPSetup{}, err
	}
	raw, _ := json.Marshal(pendingEnrolment{Secret: en.Secret, Bind: bind, Expires: s.now().Add(EnrolmentTTL).UnixMilli()})
	return TOTPSetup{QR: qr, Secret: en.Secret, URI: en.URI, Pending: s.Seal(enrolmentPurpose, raw), Action: action}, nil
}

// accountLabel names user's account to an authenticator: its email, or
// its ID when it has none.
func accountLabel(user *session.User) string {
	if user.Profile.Email != "" {
		return user.Profile.Email
	}
	return user.ID
}

// PendingSecret opens the form's pending secret for bind; false when it
// is not bind's, expired or forged.
func (s *Service) PendingSecret(r *http.Request, bind string) (string, bool) {
	var p pendingEnrolment
	raw, err := s.Open(r, enrolmentPurpose, r.PostForm.Get("pending"))
	if err != nil || json.Unmarshal(raw, &p) != nil || p.Bind != bind || s.now().UnixMilli() >= p.Expires || !secondfactor.ValidSecret(p.Secret) {
		return "", false
	}
	return p.Secret, true
}

// ErrFirstCode means the first code of a new authenticator app is not
// right: nothing was stored.
var ErrFirstCode = errors.New("signin: the first code of the authenticator app is not right")

// EnrolTOTP turns on userID's authenticator app with secret once code is
// right for it (ErrFirstCode otherwise), spends that code's step, and
// returns new backup codes (replacing any), to show once.
func (s *Service) EnrolTOTP(ctx context.Context, userID, secret, code string) ([]string, error) {
	if !s.TOTPOn() {
		return nil, errors.New("signin: authenticator apps are off")
	}
	step, err := secondfactor.CheckCode(secret, code, s.now(), 0)
	if err != nil {
		return nil, ErrFirstCode
	}
	keys := s.cfg.SecondFactor.Keys
	if err := s.factors.SetTOTP(ctx, userID, session.TOTP{Secret: keys.Seal(userID, secret), CreatedAt: s.now()}); err != nil {
		return nil, err
	}
	// The confirming code is spent: it cannot pass a challenge too.
	if _, err := s.factors.AcceptTOTPStep(ctx, userID, step); err != nil {
		return nil, err
	}
	return s.NewBackupCodes(ctx, userID)
}

// NewBackupCodes replaces userID's backup codes and returns the new ones,
// to show once.
func (s *Service) NewBackupCodes(ctx context.Context, userID string) ([]string, error) {
	codes, hashes := secondfactor.NewBackupCodes(userID)
	if err := s.factors.SetBackupCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}
