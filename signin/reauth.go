package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// PathReauth is the step-up page: re-authenticating the signed-in session
// in place (package stepup serves it).
const PathReauth = "/auth/reauth"

// Reauth is a finished re-authentication flow at a provider: the session
// that began it, when it began, and who the provider says signed in.
type Reauth struct {
	Link
	// Began is when the flow began, to whole seconds (the provider's
	// auth_time must not be older).
	Began time.Time
	// RedirectTo is where the flow was to return (validated at its start).
	RedirectTo string
}

// Reauthenticator finishes the flows BeginReauth starts: it checks the
// sign-in, moves the session's authentication and answers the callback,
// reporting whether the session was re-authenticated. The step-up pages
// (package stepup) are one.
type Reauthenticator interface {
	FinishReauth(w http.ResponseWriter, r *http.Request, re Reauth) bool
}

// HandleReauth makes h finish the flows BeginReauth starts. It is set
// once, before the service serves.
func (s *Service) HandleReauth(h Reauthenticator) { s.reauther = h }

// BeginReauth starts the flow of the provider named name to re-authenticate
// sess (the provider is asked for a new sign-in: provider.Flow's
// ForceLogin), and returns the provider URL to send the browser to.
// The callback hands it to the Reauthenticator (HandleReauth).
func (s *Service) BeginReauth(w http.ResponseWriter, r *http.Request, name string, sess *session.Session, redirectTo string) (string, error) {
	p := s.oauth[name]
	if p == nil || !p.info.StepUp {
		return "", fmt.Errorf("no provider named %q can re-authenticate", name)
	}
	return s.beginFlow(w, r, p, sealedFlow{
		RedirectTo: s.cfg.Redirects.Resolve(redirectTo),
		LinkUser:   sess.UserID, LinkSession: sess.ID,
		ReauthBegan: s.now().Unix(),
	})
}

// Reauthenticate moves sess's authentication to now, in place (same
// session ID) and on every instance: its auth_time, and its amr to amr
// (session.Store.Reauthenticate). Whatever needs a recent sign-in reads
// that auth_time: the account page's changes and protect's max_age.
func (s *Service) Reauthenticate(ctx context.Context, sess *session.Session, amr []string) error {
	return s.cfg.Sessions.Reauthenticate(ctx, sess.UserID, sess.ID, s.now(), amr)
}

// Refusals of a re-authentication whose password matched, once the user
// has a second factor (ReauthenticateWithPassword): it needs the factor
// too.
const (
	// ReauthCodeRefused: the code (from the authenticator app, or a
	// backup code) was missing or wrong.
	ReauthCodeRefused = "reauth_code"
	// ReauthCodesSpent: the session tried too many codes
	// (CheckSessionCode); a new sign-in (challenged) still works.
	ReauthCodesSpent = "reauth_codes_spent"
	// ReauthPasskeyOnly: the user's only second factor is a passkey, which
	// a form cannot check: only a new sign-in re-authenticates.
	ReauthPasskeyOnly = "reauth_passkey"
)

// ReauthenticateWithPassword checks password against the user's password
// account among accounts (CheckPassword: counted as a sign-in attempt)
// and, once the user has a second factor, code against it; when both
// match it re-authenticates sess (amr pwd, or pwd otp mfa). The account
// page's password form and the step-up page both use it. refusal is
// ReauthCodeRefused, ReauthCodesSpent or ReauthPasskeyOnly when the
// password matched but the second factor did not; err is the store's,
// when everything matched but could not be recorded.
func (s *Service) ReauthenticateWithPassword(ctx context.Context, r *http.Request, sess *session.Session, accounts []session.Account, password, code string) (check PasswordCheck, refusal string, err error) {
	if check = s.CheckPassword(ctx, r, PasswordAccount(accounts), password); check != PasswordMatches {
		return check, "", nil
	}
	amr := []string{AMRPassword}
	if s.factors != nil {
		f, err := s.factors.Factors(ctx, sess.UserID)
		switch {
		case err != nil:
			return PasswordUnavailable, "", nil
		case !f.Any():
		case f.TOTP == nil && f.BackupCodes == 0:
			return check, ReauthPasskeyOnly, nil
		default:
			if _, err := s.CheckSessionCode(ctx, sess, code); errors.Is(err, ErrWrongCode) {
				s.logger.Info("re-authentication refused: the second factor's code", zap.String("user_id", sess.UserID))
				return check, ReauthCodeRefused, nil
			} else if errors.Is(err, ErrCodeTriesSpent) {
				return check, ReauthCodesSpent, nil
			} else if err != nil {
				return PasswordUnavailable, "", nil
			}
			amr = []string{AMRPassword, AMROTP, AMRMFA}
		}
	}
	return check, "", s.Reauthenticate(ctx, sess, amr)
}

// ReauthAnswer is the status and error code a page answers a password
// re-authentication with, from ReauthenticateWithPassword's check and
// refusal; 0 and "" when it re-authenticated. The account page and the
// step-up page answer alike.
func ReauthAnswer(check PasswordCheck, refusal string) (int, string) {
	switch check {
	case PasswordMatches:
	case PasswordUnavailable, PasswordUnchecked:
		return http.StatusServiceUnavailable, "unavailable"
	case PasswordLocked:
		return http.StatusTooManyRequests, "too_many_attempts"
	default:
		return http.StatusUnauthorized, "credentials"
	}
	switch refusal {
	case "":
		return 0, ""
	case ReauthPasskeyOnly:
		return http.StatusForbidden, refusal
	case ReauthCodesSpent:
		return http.StatusTooManyRequests, refusal
	}
	return http.StatusUnauthorized, refusal
}

// HasSecondFactor reports whether the user has a second factor: then a
// re-authentication needs it too, and only ReauthenticateWithPassword
// (with its code) or a new sign-in (challenged) provide it.
func (s *Service) HasSecondFactor(ctx context.Context, userID string) (bool, error) {
	if s.factors == nil {
		return false, nil
	}
	f, err := s.factors.Factors(ctx, userID)
	return err == nil && f.Any(), err
}

// PasswordAccount is the password account among accounts, or nil.
func PasswordAccount(accounts []session.Account) *session.Account {
	for i := range accounts {
		if accounts[i].Provider == ProviderPassword {
			return &accounts[i]
		}
	}
	return nil
}
