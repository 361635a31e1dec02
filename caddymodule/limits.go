package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

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
//	    global_sign_in    1000/h
//	    second_factor     30/m
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
	// GlobalSignIn is failed password sign-ins for the whole site; once
	// spent, sign-ins from browsers an account does not know wait.
	// Default: 1000/h.
	GlobalSignIn string `json:"global_sign_in,omitempty"`
	// SecondFactor is second-factor steps per client: passkey ceremonies
	// started, codes tried at a challenge, enrolments. Default: 30/m.
	SecondFactor string `json:"second_factor,omitempty"`
}

// options are the limits' options by name (signin.LimitNames).
func (c *LimitsConfig) options() map[string]*string {
	return map[string]*string{
		signin.LimitSignUp: &c.SignUp, signin.LimitSignIn: &c.SignIn, signin.LimitEmailSend: &c.EmailSend,
		signin.LimitOAuthStart: &c.OAuthStart, signin.LimitGlobalSignUp: &c.GlobalSignUp, signin.LimitGlobalEmailSend: &c.GlobalEmailSend,
		signin.LimitGlobalSignIn: &c.GlobalSignIn,
		signin.LimitSecondFactor: &c.SecondFactor,
	}
}

// limits parses the configured rates; unset ones stay zero (the default).
func (c *LimitsConfig) limits() (signin.Limits, error) {
	var out signin.Limits
	if c == nil {
		return out, nil
	}
	opts := c.options()
	for _, name := range signin.LimitNames {
		if *opts[name] == "" {
			continue
		}
		r, err := signin.ParseRate(*opts[name], caddy.ParseDuration)
		if err != nil {
			return out, fmt.Errorf("limits %s: %w", name, err)
		}
		*out.Rate(name) = r
	}
	return out, nil
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
		v, ok := c.options()[sub]
		if !ok {
			return d.Errf("unknown limit %q: use sign_up, sign_in, email_send, oauth_start, global_sign_up, global_email_send, global_sign_in or second_factor", sub)
		}
		if err := oneArg(d, v); err != nil {
			return err
		}
		if _, err := signin.ParseRate(*v, caddy.ParseDuration); err != nil {
			return d.Errf("limits %s: %v", sub, err)
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
