// Package cookies names the cookies the gateway keeps in the browser for
// itself, besides the session cookie: the link binding, the sealed OAuth
// flow, the device cookie, the last-used hint, a failed form's flash,
// the second-factor challenge and the passkey ceremony. They are the
// gateway's business only: the request path (edge) removes every one of
// them, in every form, from the request it sends upstream. A new cookie
// of the gateway's gets its name here and is in Internal, so it cannot be
// forgotten.
package cookies

import "strings"

// Base names of the gateway's internal cookies. Each is sent as Name
// makes it: "__Host-" first over HTTPS, the realm's "_<tag>" last.
const (
	// Link binds a mailed link or code to the browser that asked for it.
	Link = "convex_auth_link"
	// Flow holds an OAuth flow, sealed, from its start to its callback.
	Flow = "convex_auth_flow"
	// Device marks a browser that signed in to an account before (the
	// password lockout's exemption).
	Device = "convex_auth_device"
	// LastUsed is the sign-in page's hint: the method the browser last
	// signed in with.
	LastUsed = "convex_auth_last"
	// Form is a failed form post's flash: the error and what was typed
	// (never a password), sealed, for the page the browser returns to.
	Form = "convex_auth_form"
	// Challenge holds a sign-in whose first factor passed, sealed, until
	// its second factor is (the second-factor challenge).
	Challenge = "convex_auth_mfa"
	// Passkey holds a passkey ceremony, sealed, from its options to the
	// browser's answer.
	Passkey = "convex_auth_passkey"
)

// Internal is every internal cookie's base name.
var Internal = []string{Link, Flow, Device, LastUsed, Form, Challenge, Passkey}

// Probe is a part of every internal cookie's name: a Cookie header that
// does not contain it in any letter case (nor a byte that decoding could
// turn into it) holds none of them.
const Probe = "convex_auth_"

// HostPrefix pins a cookie to its host over HTTPS; browsers refuse it on
// plain http.
const HostPrefix = "__Host-"

// Name is base's cookie name for a request: __Host- prefixed when secure,
// suffix (the realm's "_<tag>", or "") at the end.
func Name(base string, secure bool, suffix string) string {
	if secure {
		return HostPrefix + base + suffix
	}
	return base + suffix
}

// IsInternal reports whether name, as a framework would read it once
// trimmed and decoded, is an internal cookie: one of Internal in any
// letter case, with or without a "__Host-" or "__Secure-" prefix, alone
// or followed by "_" and any suffix (this realm's tag, or another
// realm's on the same host).
func IsInternal(name string) bool {
	for _, prefix := range []string{HostPrefix, "__Secure-"} {
		if len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
			name = name[len(prefix):]
			break
		}
	}
	if len(name) < len(Probe) || !strings.EqualFold(name[:len(Probe)], Probe) {
		return false
	}
	for _, base := range Internal {
		if len(name) < len(base) || !strings.EqualFold(name[:len(base)], base) {
			continue
		}
		if len(name) == len(base) || name[len(base)] == '_' {
			return true
		}
	}
	return false
}
