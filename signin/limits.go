package signin

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// Limit names: the metrics' label and the store keys' first part.
const (
	LimitSignUp          = "sign_up"
	LimitSignIn          = "sign_in"
	LimitEmailSend       = "email_send"
	LimitOAuthStart      = "oauth_start"
	LimitGlobalSignUp    = "global_sign_up"
	LimitGlobalEmailSend = "global_email_send"
)

// Default rate limits. Per client: generous enough for an office behind one
// address, small enough that one client cannot fill the store or a mailbox.
// Global: a ceiling on new accounts and mail for the whole site.
var (
	DefaultSignUpLimit          = session.Rate{Events: 10, Per: time.Hour}
	DefaultSignInLimit          = session.Rate{Events: 30, Per: time.Minute}
	DefaultEmailSendLimit       = session.Rate{Events: 10, Per: time.Hour}
	DefaultOAuthStartLimit      = session.Rate{Events: 30, Per: time.Minute}
	DefaultGlobalSignUpLimit    = session.Rate{Events: 1000, Per: time.Hour}
	DefaultGlobalEmailSendLimit = session.Rate{Events: 1000, Per: time.Hour}
)

// Limits are the rate limits on anonymous sign-in steps. Per-client limits
// count by the client's address (an IPv6 client by its /64); global ones
// count every client together. None applies to a signed-in session's use.
// A zero Rate takes the default.
type Limits struct {
	// SignUp is password sign-ups and new guests per client. Default: 10
	// per hour.
	SignUp session.Rate
	// SignIn is password sign-in attempts per client (on top of the
	// per-account limit). Default: 30 per minute.
	SignIn session.Rate
	// EmailSend is magic links sent per client (on top of the
	// per-address limit). Default: 10 per hour.
	EmailSend session.Rate
	// OAuthStart is OAuth and OIDC sign-in starts per client. Default: 30
	// per minute.
	OAuthStart session.Rate
	// GlobalSignUp is password sign-ups and new guests for the whole
	// site. Default: 1000 per hour.
	GlobalSignUp session.Rate
	// GlobalEmailSend is magic links sent for the whole site. Default:
	// 1000 per hour.
	GlobalEmailSend session.Rate
}

func (l *Limits) fill() error {
	for _, f := range []struct {
		name string
		r    *session.Rate
		def  session.Rate
	}{
		{LimitSignUp, &l.SignUp, DefaultSignUpLimit},
		{LimitSignIn, &l.SignIn, DefaultSignInLimit},
		{LimitEmailSend, &l.EmailSend, DefaultEmailSendLimit},
		{LimitOAuthStart, &l.OAuthStart, DefaultOAuthStartLimit},
		{LimitGlobalSignUp, &l.GlobalSignUp, DefaultGlobalSignUpLimit},
		{LimitGlobalEmailSend, &l.GlobalEmailSend, DefaultGlobalEmailSendLimit},
	} {
		if *f.r == (session.Rate{}) {
			*f.r = f.def
		}
		if f.r.Events < 1 || f.r.Per < time.Second {
			return fmt.Errorf("signin: limit %s %d/%s: allow at least 1 event per at least 1s", f.name, f.r.Events, f.r.Per)
		}
	}
	return nil
}

// rateOf returns the limit named name.
func (l *Limits) rateOf(name string) session.Rate {
	switch name {
	case LimitSignUp:
		return l.SignUp
	case LimitSignIn:
		return l.SignIn
	case LimitEmailSend:
		return l.EmailSend
	case LimitOAuthStart:
		return l.OAuthStart
	case LimitGlobalSignUp:
		return l.GlobalSignUp
	}
	return l.GlobalEmailSend
}

// RemoteIP is the default client address: the connection's peer.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientKey is the per-client part of a limit key: the address, an IPv6
// address's /64 (one subscriber's usual share).
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return truncate(ip, 64)
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// limited counts r against the per-client limit name and, when global is
// not "", the global one (only once the client is within its own, so one
// client cannot drain it). When a limit refuses, it answers 429 with
// Retry-After through again and returns true; when the store fails, 503.
func (s *Service) limited(w http.ResponseWriter, r *http.Request, name, global string, again func(status int, code string)) bool {
	ctx, cancel := storeCtx(r)
	defer cancel()
	checks := []struct{ name, key, code string }{{name, name + ":" + clientKey(s.clientIP(r)), "rate_limited"}}
	if global != "" {
		checks = append(checks, struct{ name, key, code string }{global, global, "busy"})
	}
	for _, c := range checks {
		ok, retry, err := s.limiter.Allow(ctx, c.key, s.cfg.Limits.rateOf(c.name))
		if err != nil {
			if errors.Is(err, session.ErrInvalidUser) {
				s.logger.Error("a sign-in rate limit is misconfigured", zap.String("limit", c.name), zap.Error(err))
			} else {
				s.logger.Warn("sign-in could not reach the rate limiter", zap.String("limit", c.name), zap.Error(err))
			}
			again(http.StatusServiceUnavailable, "unavailable")
			return true
		}
		if !ok {
			s.logger.Info("sign-in refused: rate limit", zap.String("limit", c.name))
			if s.cfg.OnLimited != nil {
				s.cfg.OnLimited(c.name)
			}
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
			again(http.StatusTooManyRequests, c.code)
			return true
		}
	}
	return false
}

// waitWords says a Retry-After in words: "1 minute", "12 minutes".
func waitWords(seconds string) string {
	n, err := strconv.Atoi(seconds)
	if err != nil || n < 1 {
		return "a moment"
	}
	switch {
	case n < 60:
		if n == 1 {
			return "1 second"
		}
		return fmt.Sprintf("%d seconds", n)
	case n < 3600:
		m := (n + 59) / 60
		if m == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", m)
	}
	h := (n + 3599) / 3600
	if h == 1 {
		return "1 hour"
	}
	return fmt.Sprintf("%d hours", h)
}
