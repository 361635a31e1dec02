package edge

import (
	"net/http"
	"strings"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// Presets of `inject cookie`: the cookie under which another library's
// server helpers already look for the Convex token, so an app using them
// reads the gateway's token without code changes. docs/server-helpers.md
// has the helper configuration they need; examples/nextjs runs both.
const (
	// InjectCookieBetterAuth is @convex-dev/better-auth's cookie: Better
	// Auth's cookie prefix "better-auth", a dot, and the Convex plugin's
	// JWT_COOKIE_NAME "convex_jwt", with "__Secure-" in front on secure
	// requests. Its reader takes either, and the "-" spellings too.
	InjectCookieBetterAuth = "better-auth"
	// InjectCookieConvexAuth is @convex-dev/auth's Next.js cookie
	// "__convexAuthJWT", with "__Host-" in front unless the request's Host
	// passes Convex Auth's localhost test.
	InjectCookieConvexAuth = "convex-auth"

	convexAuthJWTCookie = "__convexAuthJWT"
	hostPrefix          = "__Host-"
)

// betterAuthReads is every name @convex-dev/better-auth's getToken takes
// its token from (better-auth's getSessionCookie with cookieName
// "convex_jwt"), first match wins, whatever the app's Better Auth config.
var betterAuthReads = []string{
	"__Secure-better-auth.convex_jwt",
	"better-auth.convex_jwt",
	"__Secure-better-auth-convex_jwt",
	"better-auth-convex_jwt",
}

// convexAuthReads is both names convexAuthNextjsToken may read.
var convexAuthReads = []string{hostPrefix + convexAuthJWTCookie, convexAuthJWTCookie}

// injectCookie is the resolved `inject cookie` setting: the name the token
// goes under for a request, and every name the app's reader takes a token
// from, whose client-sent copies are removed.
type injectCookie struct {
	nameFor func(r *http.Request) string
	reads   []string
}

func resolveInjectCookie(setting string) injectCookie {
	switch setting {
	case InjectCookieBetterAuth:
		// The reader takes any of its names; the gateway picks the one
		// Better Auth itself would set, by the rule its own session
		// cookie's Secure flag follows.
		return injectCookie{
			nameFor: func(r *http.Request) string {
				if httprule.SecureRequest(r) {
					return betterAuthReads[0]
				}
				return betterAuthReads[1]
			},
			reads: betterAuthReads,
		}
	case InjectCookieConvexAuth:
		return injectCookie{
			nameFor: func(r *http.Request) string {
				if convexAuthLocalHost(r.Host) {
					return convexAuthJWTCookie
				}
				return hostPrefix + convexAuthJWTCookie
			},
			reads: convexAuthReads,
		}
	default:
		return injectCookie{nameFor: func(*http.Request) string { return setting }, reads: []string{setting}}
	}
}

// strip removes every client-sent cookie the app's reader could take a
// token from, in any letter case.
func (c injectCookie) strip(r *http.Request) {
	removeCookies(r, c.reads...)
}

// convexAuthLocalHost is @convex-dev/auth's isLocalHost (0.0.95,
// server/utils.js), which picks its cookie names:
// /(localhost|127\.0\.0\.1):\d+/ found anywhere in the Host header, case
// sensitive. So "localhost" without a port and "[::1]:3000" are not local,
// and "app.localhost:3000" is.
func convexAuthLocalHost(host string) bool {
	return hasPortAfter(host, "localhost:") || hasPortAfter(host, "127.0.0.1:")
}

// hasPortAfter reports whether s contains prefix followed by an ASCII digit.
func hasPortAfter(s, prefix string) bool {
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			return false
		}
		s = s[i+len(prefix):]
		if s != "" && '0' <= s[0] && s[0] <= '9' {
			return true
		}
	}
}
