package edge

import (
	"net/http"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// Presets of `inject cookie`: the cookie under which another library's
// server helpers already look for the Convex token, so an app using them
// reads the gateway's token without code changes.
const (
	// InjectCookieBetterAuth is @convex-dev/better-auth's cookie: Better Auth's
	// cookie prefix "better-auth", a dot, and the Convex plugin's
	// JWT_COOKIE_NAME "convex_jwt"; "__Secure-" in front when Better Auth
	// uses secure cookies (a https baseURL).
	InjectCookieBetterAuth = "better-auth"
	// InjectCookieConvexAuth is @convex-dev/auth's Next.js cookie
	// "__convexAuthJWT", with "__Host-" in front unless the request's host is
	// localhost.
	InjectCookieConvexAuth = "convex-auth"

	betterAuthJWTCookie = "better-auth.convex_jwt"
	convexAuthJWTCookie = "__convexAuthJWT"
	securePrefix        = "__Secure-"
	hostPrefix          = "__Host-"
)

// injectCookie is the resolved `inject cookie` setting: one fixed name, or a
// preset whose name depends on the request the way the library that reads it
// decides.
type injectCookie struct {
	name string
	// prefix goes in front of name when prefixed says the request wants it.
	prefix   string
	prefixed func(r *http.Request) bool
}

func resolveInjectCookie(setting string) injectCookie {
	switch setting {
	case InjectCookieBetterAuth:
		// Better Auth prefixes its cookies when its baseURL is https (or
		// advanced.useSecureCookies is set); the gateway's nearest
		// per-request signal is the one its own session cookie's Secure
		// flag follows.
		return injectCookie{name: betterAuthJWTCookie, prefix: securePrefix, prefixed: httprule.SecureRequest}
	case InjectCookieConvexAuth:
		// Convex Auth's Next.js helpers drop the prefix for localhost hosts
		// only, whatever the scheme.
		return injectCookie{name: convexAuthJWTCookie, prefix: hostPrefix, prefixed: func(r *http.Request) bool { return !httprule.IsLocalHost(r.Host) }}
	default:
		return injectCookie{name: setting}
	}
}

// nameFor is the cookie name the token is injected under for r.
func (c injectCookie) nameFor(r *http.Request) string {
	if c.prefix != "" && c.prefixed(r) {
		return c.prefix + c.name
	}
	return c.name
}

// strip removes every client-sent cookie this setting could inject, under
// either name and in any letter case.
func (c injectCookie) strip(r *http.Request) {
	if c.prefix != "" {
		removeCookies(r, c.name, c.prefix+c.name)
		return
	}
	removeCookies(r, c.name)
}
