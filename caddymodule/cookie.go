package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Session cookie names when none is configured. The __Host- prefix pins the
// cookie to this host over HTTPS; browsers refuse it on plain http.
const (
	DefaultCookieName       = "convex_session"
	DefaultSecureCookieName = "__Host-convex_session"
	DefaultCookiePath       = "/"
)

// CookieConfig is the session cookie. It is always HttpOnly; Secure is set
// automatically except for plain-http requests to localhost.
type CookieConfig struct {
	// Name of the cookie. Default: "__Host-convex_session" over HTTPS,
	// "convex_session" on plain http or with a domain or path set.
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

type cookieSettings struct {
	name     string // configured name, or "" for the defaults
	domain   string
	path     string
	sameSite http.SameSite
}

// requestCookie is the cookie as it applies to one request.
type requestCookie struct {
	cookieSettings
	secure bool
}

func (c *CookieConfig) settings() (cookieSettings, error) {
	s := cookieSettings{name: c.Name, domain: c.Domain, path: c.Path}
	if s.path == "" {
		s.path = DefaultCookiePath
	}
	if !strings.HasPrefix(s.path, "/") {
		return s, fmt.Errorf("convex_auth: cookie path %q must start with /", c.Path)
	}
	if c.Name != "" && !validCookieName(c.Name) {
		return s, fmt.Errorf("convex_auth: cookie name %q is not a valid cookie name", c.Name)
	}
	if strings.HasPrefix(c.Name, "__Host-") && (c.Domain != "" || s.path != "/") {
		return s, fmt.Errorf("convex_auth: cookie name %q uses the __Host- prefix, which allows no domain and only path /", c.Name)
	}
	switch strings.ToLower(c.SameSite) {
	case "", "lax":
		s.sameSite = http.SameSiteLaxMode
	case "strict":
		s.sameSite = http.SameSiteStrictMode
	case "none":
		s.sameSite = http.SameSiteNoneMode
	default:
		return s, fmt.Errorf("convex_auth: cookie same_site %q is unknown: use lax, strict or none", c.SameSite)
	}
	return s, nil
}

func (s cookieSettings) forRequest(r *http.Request) requestCookie {
	rc := requestCookie{cookieSettings: s, secure: secureRequest(r)}
	if rc.name == "" {
		rc.name = DefaultCookieName
		if rc.secure && rc.domain == "" && rc.path == "/" {
			rc.name = DefaultSecureCookieName
		}
	}
	return rc
}

// isLocalHost is the one place a plain-http cookie may drop Secure.
func isLocalHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c requestCookie) set(value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     c.name,
		Value:    value,
		Domain:   c.domain,
		Path:     c.path,
		Expires:  expires,
		MaxAge:   max(int(time.Until(expires).Seconds()), 1),
		HttpOnly: true,
		Secure:   c.secure || c.sameSite == http.SameSiteNoneMode,
		SameSite: c.sameSite,
	}
}

func (c requestCookie) clear() *http.Cookie {
	return &http.Cookie{
		Name:     c.name,
		Value:    "",
		Domain:   c.domain,
		Path:     c.path,
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   c.secure || c.sameSite == http.SameSiteNoneMode,
		SameSite: c.sameSite,
	}
}

// maxSessionCookieLen bounds what is looked up at all; real tokens are short.
const maxSessionCookieLen = 256

// readCookie returns the first cookie called name from the request's Cookie
// headers, without parsing the others.
func readCookie(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			v = strings.Trim(v, `"`)
			if v == "" || len(v) > maxSessionCookieLen {
				return "", false
			}
			return v, true
		}
	}
	return "", false
}

// removeCookies drops every cookie called name (in any letter case) from the
// request, keeping the others as they were sent.
func removeCookies(r *http.Request, name string) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return
	}
	found := false
	for _, line := range lines {
		if containsFold(line, name) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	// One pass into one buffer: this runs on most requests (the session
	// cookie is removed before the request goes upstream).
	var kept strings.Builder
	kept.Grow(len(lines[0]))
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			k, _, _ := strings.Cut(part, "=")
			if strings.EqualFold(strings.TrimSpace(k), name) {
				continue
			}
			if kept.Len() > 0 {
				kept.WriteString("; ")
			}
			kept.WriteString(part)
		}
	}
	if kept.Len() == 0 {
		delete(r.Header, "Cookie")
		return
	}
	r.Header["Cookie"] = []string{kept.String()}
}

// addCookie appends name=value to the request's cookies as one Cookie line,
// as RFC 6265 has user agents send them.
func addCookie(r *http.Request, name, value string) {
	lines := r.Header["Cookie"]
	n := len(name) + 1 + len(value)
	for _, line := range lines {
		n += len(line) + len("; ")
	}
	var b strings.Builder
	b.Grow(n)
	for _, line := range lines {
		b.WriteString(line)
		b.WriteString("; ")
	}
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(value)
	r.Header["Cookie"] = []string{b.String()}
}

func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

// validCookieName accepts RFC 6265 token characters.
func validCookieName(name string) bool {
	return name != "" && isToken(name)
}

func validHeaderName(name string) bool {
	return name != "" && isToken(name)
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}
