// Package httprule holds the HTTP rules that the request path and the
// sign-in flows share, so each has one home: which requests get Secure
// cookies, which paths are local, how big a posted form may be, how long
// one store call made for a request may take, which configured values
// are placeholders still to be replaced, and which requests are a
// browser's navigations.
package httprule

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

const (
	// StoreCallTimeout bounds one session-store call made while serving a
	// request.
	StoreCallTimeout = 2 * time.Second
	// MaxFormBytes bounds a posted form (sign-in, sign-out).
	MaxFormBytes = 16 << 10
)

// SecureRequest tells whether cookies set for r need Secure: everything but
// plain http to a loopback host (the gateway is otherwise behind a TLS
// terminator).
func SecureRequest(r *http.Request) bool {
	return r.TLS != nil || !IsLocalHost(r.Host)
}

// IsLocalHost reports whether hostport names this machine: localhost, a
// *.localhost name or a loopback address. It is the one place a plain-http
// cookie may drop Secure.
func IsLocalHost(hostport string) bool {
	// It runs on every request: a host without ':' and a name that cannot
	// be an address skip the calls that would allocate an error.
	host := hostport
	if strings.IndexByte(hostport, ':') >= 0 {
		if h, _, err := net.SplitHostPort(hostport); err == nil {
			host = h
		}
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if host == "" || !(strings.IndexByte(host, ':') >= 0 || '0' <= host[0] && host[0] <= '9') {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// IsLocalPath reports whether p is a path on this site: one leading slash,
// not //host, and no backslash anywhere (browsers read \ as /).
func IsLocalPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.Contains(p, `\`)
}

// IsAbsoluteHTTPURL reports whether s is an http(s) URL with a host.
func IsAbsoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// HasPlaceholder reports whether a configured value holds a placeholder
// such as {env.X}, which the host replaces before the value is used: the
// form of such a value is checked only after the replacement.
func HasPlaceholder(v string) bool {
	return strings.Contains(v, "{")
}

// Navigates reports whether r is a browser navigation: a page loading, or
// a form posted from a page, as opposed to a script's fetch. Browsers say
// so in Sec-Fetch-Mode; one that does not send it is read by its Accept
// header (a page load asks for HTML).
func Navigates(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(strings.ToLower(r.Header.Get("Accept")), "text/html")
}
