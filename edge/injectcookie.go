package edge

import (
	"net/http"
	"slices"
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
	// InjectCookieConvexAuth is @convex-dev/auth 0.0.x's Next.js cookie
	// "__convexAuthJWT", with "__Host-" in front unless the request's Host
	// passes Convex Auth's localhost test.
	InjectCookieConvexAuth = "convex-auth"
	// InjectCookieConvexAuth2 is @convex-dev/auth 2.x's SSR cookie
	// "__convexAuthJWT", under that one name on every host.
	InjectCookieConvexAuth2 = "convex-auth-2"

	convexAuthJWTCookie = "__convexAuthJWT"
	hostPrefix          = "__Host-"
)

// IsInjectCookiePreset reports whether an `inject cookie` setting is one of
// the presets, whose apps hand the token on to the browser.
func IsInjectCookiePreset(setting string) bool {
	return setting == InjectCookieBetterAuth || setting == InjectCookieConvexAuth || setting == InjectCookieConvexAuth2
}

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

// injectableCookies is every cookie name the gateway can inject under
// without a custom name: the default and each preset's spellings. Client
// copies of all of them are removed whatever is configured, so that an app
// reading one of them never takes a client's token for the gateway's.
var injectableCookies = append(append([]string{DefaultInjectCookie}, betterAuthReads...), convexAuthReads...)

// injectableProbes are parts of the names in injectableCookies: each of
// those contains one of them, so a Cookie header without any holds none.
var injectableProbes = []string{DefaultInjectCookie, convexAuthJWTCookie}

// injectCookie is the resolved `inject cookie` setting: the name the token
// goes under for a request (nil: no cookie, the header carries it alone),
// and every name whose client-sent copies are removed.
type injectCookie struct {
	nameFor func(r *http.Request) string
	strips  []string
	probes  []string // see injectableProbes
}

// resolveInjectCookie resolves the setting; "" injects no cookie.
func resolveInjectCookie(setting string) injectCookie {
	c := resolveInjectCookieName(setting)
	c.strips, c.probes = injectableCookies, injectableProbes
	if setting != "" && !IsInjectCookiePreset(setting) && !slices.ContainsFunc(injectableCookies, func(n string) bool { return strings.EqualFold(n, setting) }) {
		c.strips = append(slices.Clip(injectableCookies), setting)
		c.probes = append(slices.Clip(injectableProbes), setting)
	}
	return c
}

func resolveInjectCookieName(setting string) injectCookie {
	switch setting {
	case "":
		return injectCookie{}
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
		}
	case InjectCookieConvexAuth:
		return injectCookie{
			nameFor: func(r *http.Request) string {
				if convexAuthLocalHost(r.Host) {
					return convexAuthJWTCookie
				}
				return hostPrefix + convexAuthJWTCookie
			},
		}
	case InjectCookieConvexAuth2:
		return injectCookie{nameFor: func(*http.Request) string { return convexAuthJWTCookie }}
	default:
		return injectCookie{nameFor: func(*http.Request) string { return setting }}
	}
}

// strip removes every client-sent cookie an app's reader could take a token
// from, in any letter case.
func (c injectCookie) strip(r *http.Request) {
	removeCookiesMatching(r, c.probes, func(name string) bool { return foldedIn(name, c.strips) })
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
