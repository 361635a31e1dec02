package signin

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/mail"
	pkgprovider "github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// finish starts the session for user, sends the browser to target and
// reports whether the session started. A browser that was a guest is
// told apart: upgraded in place, or replaced by another user.
func (s *Service) finish(w http.ResponseWriter, r *http.Request, user *session.User, provider, target string) bool {
	return s.finishWith(w, r, user, provider, target, nil)
}

// finishWith is finish for a method that says how the user authenticated
// (RFC 8176 amr values; nil: the provider's own). It is the one place
// every first factor ends: a user with a second factor (or who must enrol
// one) is sent to the challenge instead, and no session exists until it
// is passed.
func (s *Service) finishWith(w http.ResponseWriter, r *http.Request, user *session.User, provider, target string, amr []string) bool {
	res := Result{User: user, Provider: provider, AMR: amr}
	maxTTL, admitted := s.sessionCap(provider, user)
	if !admitted {
		s.logger.Info("sign-in refused by an admission rule", zap.String("provider", provider), zap.String("rule", pkgprovider.RuleEmailDomain))
		s.failSignIn(w, r, http.StatusForbidden, refusedCode(pkgprovider.RuleEmailDomain))
		return false
	}
	res.MaxTTL = maxTTL
	if guestID := s.guestSessionUser(r); guestID != "" && provider != ProviderAnonymous {
		if guestID == user.ID {
			res.UpgradedGuest = true
		} else {
			res.ReplacedUserID = guestID
		}
	}
	if user.Banned {
		return s.startSession(w, r, res, target)
	}
	switch challenged, err := s.challenge(w, r, res, target); {
	case err != nil:
		s.logger.Warn("sign-in could not read the user's second factors", zap.String("provider", provider), zap.Error(err))
		s.failSignIn(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	case challenged:
		return false
	}
	return s.startSession(w, r, res, target)
}

// startSession has the Host start res's session and sends the browser to
// target; a banned user gets the page that says so.
func (s *Service) startSession(w http.ResponseWriter, r *http.Request, res Result, target string) bool {
	return s.startSessionThen(w, r, res, func() { Redirect(w, r, s.cfg.Redirects.Resolve(target)) })
}

// startSessionThen is startSession with then answering once the session
// started.
func (s *Service) startSessionThen(w http.ResponseWriter, r *http.Request, res Result, then func()) bool {
	user, provider := res.User, res.Provider
	err := ErrBanned
	if !user.Banned {
		err = s.cfg.Host.StartSession(w, r, res)
	}
	if errors.Is(err, ErrBanned) {
		s.logger.Info("sign-in refused: the user is banned", zap.String("provider", provider), zap.String("user_id", user.ID))
		s.failSignIn(w, r, http.StatusForbidden, "banned")
		return false
	}
	if err != nil {
		s.logger.Warn("sign-in could not start a session", zap.String("provider", provider), zap.Error(err))
		s.failSignIn(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	if provider != ProviderAnonymous {
		ctx, cancel := storeCtx(r)
		token, newBrowser := s.rememberDevice(ctx, w, r, user.ID)
		if res.TrustDevice {
			s.trustDevice(ctx, user.ID, token)
		}
		cancel()
		if newBrowser && user.Profile.Email != "" && s.cfg.Mail != nil && !s.cfg.Mail.QuietNewDevices {
			d := s.noticeData(mail.NewDevice, user.Profile.Email)
			d.Device = session.CapUserAgent(r.Header.Get("User-Agent"))
			if d.Device == "" {
				d.Device = "(a browser that sent no User-Agent)"
			}
			s.sendNotice(r.Context(), d)
		}
		s.rememberMethod(w, r, provider)
	}
	then()
	return true
}
