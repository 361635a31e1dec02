// Package authz owns the gateway's authorization: the rules of protected
// paths (who may enter: allow and deny criteria on the user, the session
// and its claims; how recent the sign-in must be; whether it needs a
// second factor) and the custom claims the app's own Convex query returns
// for a session (fetched as the user, checked, cached with the session for
// every instance, refreshed on the app's request). It imports no Caddy
// package; caddymodule parses its configuration and edge applies it.
package authz
