package caddymodule

import (
	"fmt"

	"github.com/convex-auth/caddy-convex-auth/edge"
)

// Session cookie names when none is configured, before the realm's suffix
// (edge.DefaultCookieNameFor).
const (
	DefaultCookieName       = edge.DefaultCookieName
	DefaultSecureCookieName = edge.DefaultSecureCookieName
)

// CookieConfig is the session cookie. It is always HttpOnly; Secure is set
// automatically except for plain-http requests to localhost.
type CookieConfig struct {
	// Name of the cookie. Default: "__Host-convex_session_<tag>" over
	// HTTPS, "convex_session_<tag>" on plain http or with a domain or path
	// set, where <tag> is 8 characters of the realm's hash: two realms on
	// one host (two localhost ports) keep separate cookies. A configured
	// name is used as it is; give each realm on one host its own.
	Name string `json:"name,omitempty"`
	// Domain widens the cookie to subdomains. Default: none (host only).
	Domain string `json:"domain,omitempty"`
	// Path of the cookie. Default: "/".
	Path string `json:"path,omitempty"`
	// SameSite is lax, strict or none. Default: lax.
	SameSite string `json:"same_site,omitempty"`
	// ForwardToUpstream keeps the session cookie in the request sent
	// upstream. Default: false, the upstream sees only the JWT.
	ForwardToUpstream bool `json:"forward_to_upstream,omitempty"`
}

func (c *CookieConfig) settings() (edge.CookieSettings, error) {
	s, err := edge.NewCookieSettings(c.Name, c.Domain, c.Path, c.SameSite)
	if err != nil {
		return s, fmt.Errorf("convex_auth: %w", err)
	}
	return s, nil
}
