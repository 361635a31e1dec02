package signin

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

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
	LimitGlobalSignIn    = "global_sign_in"
	LimitSecondFactor    = "second_factor"
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
	DefaultGlobalSignInLimit    = session.Rate{Events: 1000, Per: time.Hour}
	DefaultSecondFactorLimit    = session.Rate{Events: 30, Per: time.Minute}
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
	// GlobalSignIn is failed password sign-ins for the whole site (only
	// failures count, and each client's are bounded by SignIn first, so
	// one client cannot spend it). Once it is spent, password sign-ins
	// from browsers the account does not know wait until it allows one
	// again. Default: 1000 per hour.
	GlobalSignIn session.Rate
	// SecondFactor is second-factor steps per client: passkey ceremonies
	// started, codes tried at a challenge, enrolments (on top of each
	// challenge's 5 wrong codes). Default: 30 per minute.
	SecondFactor session.Rate
}

// LimitNames are the limits' names, in the order of Limits' fields.
var LimitNames = []string{LimitSignUp, LimitSignIn, LimitEmailSend, LimitOAuthStart, LimitGlobalSignUp, LimitGlobalEmailSend, LimitGlobalSignIn, LimitSecondFactor}

// Rate is the limit named name (one of LimitNames), nil for another name.
func (l *Limits) Rate(name string) *session.Rate {
	switch name {
	case LimitSignUp:
		return &l.SignUp
	case LimitSignIn:
		return &l.SignIn
	case LimitEmailSend:
		return &l.EmailSend
	case LimitOAuthStart:
		return &l.OAuthStart
	case LimitGlobalSignUp:
		return &l.GlobalSignUp
	case LimitGlobalEmailSend:
		return &l.GlobalEmailSend
	case LimitGlobalSignIn:
		return &l.GlobalSignIn
	case LimitSecondFactor:
		return &l.SecondFactor
	}
	return nil
}

func (l *Limits) fill() error {
	defaults := Limits{DefaultSignUpLimit, DefaultSignInLimit, DefaultEmailSendLimit, DefaultOAuthStartLimit,
		DefaultGlobalSignUpLimit, DefaultGlobalEmailSendLimit, DefaultGlobalSignInLimit,
		DefaultSecondFactorLimit}
	for _, name := range LimitNames {
		r := l.Rate(name)
		if *r == (session.Rate{}) {
			*r = *defaults.Rate(name)
		}
		if r.Events < 1 || r.Per < time.Second {
			return fmt.Errorf("signin: limit %s %d/%s: allow at least 1 event per at least 1s", name, r.Events, r.Per)
		}
	}
	return nil
}

// ParseRate reads "<events>/<period>": "10/1h", "30/m" (a bare unit is one
// of it), "5/90s". parseDuration reads the period (the host's, which may
// know more units than Go's).
func ParseRate(s string, parseDuration func(string) (time.Duration, error)) (session.Rate, error) {
	n, per, ok := strings.Cut(s, "/")
	events, err := strconv.Atoi(n)
	if !ok || err != nil || events < 1 {
		return session.Rate{}, fmt.Errorf("%q is not a rate: use <events>/<period>, e.g. 10/h or 30/1m", s)
	}
	if per != "" && strings.IndexFunc(per, func(r rune) bool { return r < '0' || r > '9' }) == 0 {
		per = "1" + per
	}
	d, err := parseDuration(per)
	if err != nil || d < time.Second {
		return session.Rate{}, fmt.Errorf("%q: the period must be a duration of at least 1s, e.g. 10/h or 30/1m", s)
	}
	return session.Rate{Events: events, Per: d}, nil
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
