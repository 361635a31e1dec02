package signin

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
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
