package signin

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// The device cookie marks a browser that signed in to an account before
// (session.Devices keeps its hash per user). Every sign-in sets it, or
// renews it, for DeviceTTL. A remembered browser is exempt from the
// per-account password lockout, and a sign-in from a browser the account
// has not seen is mailed to its owner. A reset, "sign out everywhere" (and
// "sign out other sessions", a password change, the first proof of the
// address) forget every browser of the user but the one doing it.

// DeviceTTL is how long a browser stays remembered after its last sign-in.
const DeviceTTL = 180 * 24 * time.Hour

func (s *Service) deviceCookie(r *http.Request) string {
	return cookies.Name(cookies.Device, httprule.SecureRequest(r), s.cookieSuffix)
}

// deviceToken is the browser's device token, or "" when it has none.
func (s *Service) deviceToken(r *http.Request) string {
	c, err := r.Cookie(s.deviceCookie(r))
	if err != nil || !session.ValidDeviceToken(c.Value) {
		return ""
	}
	return c.Value
}

// knownDevice reports whether the browser signed in to userID before; a
// store that cannot tell says no.
func (s *Service) knownDevice(ctx context.Context, r *http.Request, userID string) bool {
	token := s.deviceToken(r)
	if s.devices == nil || token == "" || userID == "" {
		return false
	}
	known, err := s.devices.KnownDevice(ctx, userID, token)
	if err != nil {
		s.logger.Warn("could not tell whether the browser signed in before", zap.Error(err))
	}
	return known
}

// rememberDevice sets the browser's device cookie (a new token if it has
// none) and remembers it for userID; it returns the token ("" when none
// could be kept) and reports whether the user had another browser
// remembered and this one was not. Best effort: a failure is logged.
func (s *Service) rememberDevice(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string) (token string, newToKnownUser bool) {
	if s.devices == nil {
		return "", false
	}
	knownBefore := false
	token = s.deviceToken(r)
	if token != "" {
		knownBefore = s.knownDevice(ctx, r, userID)
	} else {
		var err error
		if token, err = session.NewDeviceToken(); err != nil {
			s.logger.Warn("could not make a device cookie", zap.Error(err))
			return "", false
		}
	}
	others, err := s.devices.RememberDevice(ctx, userID, token, DeviceTTL)
	if err != nil {
		s.logger.Warn("could not remember the browser", zap.Error(err))
		return "", false
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.deviceCookie(r), Value: token, Path: "/", MaxAge: int(DeviceTTL / time.Second),
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode,
	})
	return token, others && !knownBefore
}

// ForgetDevices forgets every browser of userID but r's (nil: none), which
// is remembered again: after a reset, "sign out everywhere else" or a
// password change, only the browser that did it is known. Best effort: a
// failure is logged.
func (s *Service) ForgetDevices(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string) {
	if s.devices == nil {
		return
	}
	if err := s.devices.ForgetDevices(ctx, userID); err != nil {
		s.logger.Warn("could not forget the user's browsers", zap.String("user_id", userID), zap.Error(err))
		return
	}
	if r != nil && s.deviceToken(r) != "" {
		_, _ = s.rememberDevice(ctx, w, r, userID)
	}
}

// rememberDeviceOn reports whether a browser may skip the challenge once
// it passed one (remember_device).
func (s *Service) rememberDeviceOn() bool {
	sf := s.cfg.SecondFactor
	return s.devices != nil && sf != nil && sf.RememberDevice > 0
}

// trustedDevice reports whether the browser passed userID's second factor
// and asked to be remembered, within remember_device; a store that cannot
// tell says no (the challenge is asked).
func (s *Service) trustedDevice(ctx context.Context, r *http.Request, userID string) bool {
	token := s.deviceToken(r)
	if !s.rememberDeviceOn() || token == "" {
		return false
	}
	ok, err := s.devices.TrustedDevice(ctx, userID, token)
	if err != nil {
		s.logger.Warn("could not tell whether the browser is remembered past the second factor", zap.Error(err))
	}
	return ok
}

// trustDevice remembers the browser (its device token) past userID's
// second factor for remember_device. Best effort: a failure is logged.
func (s *Service) trustDevice(ctx context.Context, userID, token string) {
	if !s.rememberDeviceOn() || token == "" {
		return
	}
	if err := s.devices.TrustDevice(ctx, userID, token, s.cfg.SecondFactor.RememberDevice); err != nil {
		s.logger.Warn("could not remember the browser past the second factor", zap.Error(err))
	}
}
