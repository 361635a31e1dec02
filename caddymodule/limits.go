package caddymodule

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// LimitsConfig are the sign-in rate limits, the sign_in field's limits.
// Each is "<events>/<period>", e.g. "10/1h" or "30/m" (a bare unit means
// one of it). Per-client limits count by the client address Caddy resolves
// (honouring the server's trusted_proxies; an IPv6 client by its /64);
// global ones count all clients together. With redis every instance shares
// the counts. None applies to using a session: a signed-in user is never
// locked out. A refused request gets 429, Retry-After and a page in words,
// and counts in caddy_convex_auth_rate_limited_total{limit}.
//
// Caddyfile, inside convex_auth:
//
//	limits {
//	    sign_up           10/h
//	    sign_in           30/m
//	    email_send        10/h
//	    oauth_start       30/m
//	    global_sign_up    1000/h
//	    global_email_send 1000/h
//	}
type LimitsConfig struct {
	// SignUp is password sign-ups and new guests per client. Default: 10/h.
	SignUp string `json:"sign_up,omitempty"`
	// SignIn is password sign-in attempts per client, on top of each
	// account's max_attempts. Default: 30/m.
	SignIn string `json:"sign_in,omitempty"`
	// EmailSend is magic links sent per client, on top of each address's
	// max_sends. Default: 10/h.
	EmailSend string `json:"email_send,omitempty"`
	// OAuthStart is OAuth and OIDC sign-in starts per client. Default: 30/m.
	OAuthStart string `json:"oauth_start,omitempty"`
	// GlobalSignUp is password sign-ups and new guests for the whole site.
	// Default: 1000/h.
	GlobalSignUp string `json:"global_sign_up,omitempty"`
	// GlobalEmailSend is magic links sent for the whole site. Default:
	// 1000/h.
	GlobalEmailSend string `json:"global_email_send,omitempty"`
}

func (c *LimitsConfig) fields() []struct {
	name string
	v    *string
	dst  func(*signin.Limits) *session.Rate
} {
	return []struct {
		name string
		v    *string
		dst  func(*signin.Limits) *session.Rate
	}{
		{signin.LimitSignUp, &c.SignUp, func(l *signin.Limits) *session.Rate { return &l.SignUp }},
		{signin.LimitSignIn, &c.SignIn, func(l *signin.Limits) *session.Rate { return &l.SignIn }},
		{signin.LimitEmailSend, &c.EmailSend, func(l *signin.Limits) *session.Rate { return &l.EmailSend }},
		{signin.LimitOAuthStart, &c.OAuthStart, func(l *signin.Limits) *session.Rate { return &l.OAuthStart }},
		{signin.LimitGlobalSignUp, &c.GlobalSignUp, func(l *signin.Limits) *session.Rate { return &l.GlobalSignUp }},
		{signin.LimitGlobalEmailSend, &c.GlobalEmailSend, func(l *signin.Limits) *session.Rate { return &l.GlobalEmailSend }},
	}
}

// limits parses the configured rates; unset ones stay zero (the default).
func (c *LimitsConfig) limits() (signin.Limits, error) {
	var out signin.Limits
	if c == nil {
		return out, nil
	}
	for _, f := range c.fields() {
		if *f.v == "" {
			continue
		}
		r, err := parseRate(*f.v)
		if err != nil {
			return out, fmt.Errorf("limits %s: %w", f.name, err)
		}
		*f.dst(&out) = r
	}
	return out, nil
}

// parseRate reads "<events>/<period>": "10/1h", "30/m", "5/90s".
func parseRate(s string) (session.Rate, error) {
	n, per, ok := strings.Cut(s, "/")
	events, err := strconv.Atoi(n)
	if !ok || err != nil || events < 1 {
		return session.Rate{}, fmt.Errorf("%q is not a rate: use <events>/<period>, e.g. 10/h or 30/1m", s)
	}
	if per != "" && strings.IndexFunc(per, func(r rune) bool { return r < '0' || r > '9' }) == 0 {
		per = "1" + per
	}
	d, err := caddy.ParseDuration(per)
	if err != nil || d < time.Second {
		return session.Rate{}, fmt.Errorf("%q: the period must be a duration of at least 1s, e.g. 10/h or 30/1m", s)
	}
	return session.Rate{Events: events, Per: d}, nil
}

func (c *LimitsConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("limits takes a block: limits { sign_up 10/h }")
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("limits: %s is set more than once: keep one", sub)
		}
		seen[sub] = true
		found := false
		for _, f := range c.fields() {
			if f.name == sub {
				found = true
				if err := oneArg(d, f.v); err != nil {
					return err
				}
				if _, err := parseRate(*f.v); err != nil {
					return d.Errf("limits %s: %v", sub, err)
				}
			}
		}
		if !found {
			return d.Errf("unknown limit %q: use sign_up, sign_in, email_send, oauth_start, global_sign_up or global_email_send", sub)
		}
	}
	return nil
}

// caddyClientIP is the client address Caddy resolved for r, honouring the
// server's trusted_proxies; the peer address where Caddy set none.
func caddyClientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return signin.RemoteIP(r)
}
