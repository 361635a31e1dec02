package signin

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// DefaultAfterSignIn is where a browser goes after signing in when it
// brought no acceptable redirectTo.
const DefaultAfterSignIn = "/"

// maxRedirectToBytes bounds a redirectTo value; real ones are short.
const maxRedirectToBytes = 2048

// maxPercentDecodes is how many layers of percent-encoding are looked
// through when checking a redirectTo value.
const maxPercentDecodes = 3

// RedirectPolicy decides where a browser may be sent after signing in: a
// path on this site, or a URL on one of the allowed origins. Anything else
// falls back to AfterSignIn.
type RedirectPolicy struct {
	// AfterSignIn is the fallback target; it must pass the policy itself
	// or be an http(s) URL the operator configured.
	AfterSignIn string
	// Origins are the allowed origins for absolute URLs, as
	// scheme://host[:port], compared after lowercasing.
	Origins []string
}

// NewRedirectPolicy checks the fallback and the origins.
func NewRedirectPolicy(afterSignIn string, origins []string) (RedirectPolicy, error) {
	p := RedirectPolicy{AfterSignIn: afterSignIn}
	for _, o := range origins {
		norm, err := NormalizeOrigin(o)
		if err != nil {
			return p, err
		}
		p.Origins = append(p.Origins, norm)
	}
	if afterSignIn == "" {
		p.AfterSignIn = DefaultAfterSignIn
	}
	if !httprule.IsLocalPath(p.AfterSignIn) && !httprule.IsAbsoluteHTTPURL(p.AfterSignIn) {
		return p, fmt.Errorf("after_sign_in %q must be a path on this site (/...) or an http(s) URL", afterSignIn)
	}
	return p, nil
}

// NormalizeOrigin checks that s is scheme://host[:port] with nothing else
// and returns it lowercased.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || hasUnsafeByte(s) {
		return "", fmt.Errorf("redirect origin %q is not an origin: use scheme://host[:port], e.g. https://app.example.com", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// Resolve returns target if it is allowed, else the fallback.
func (p RedirectPolicy) Resolve(target string) string {
	if ok := p.Allowed(target); ok {
		return target
	}
	return p.AfterSignIn
}

// Allowed reports whether target is a path on this site or a URL on an
// allowed origin.
func (p RedirectPolicy) Allowed(target string) bool {
	if target == "" || len(target) > maxRedirectToBytes {
		return false
	}
	// Look through encoded forms too: a value decoded by some later layer
	// must not turn into something unsafe.
	forms := []string{target}
	cur := target
	for range maxPercentDecodes {
		dec, err := url.PathUnescape(cur)
		if err != nil {
			return false
		}
		if dec == cur {
			break
		}
		forms = append(forms, dec)
		cur = dec
	}
	if hasUnsafeByte(target) {
		return false
	}
	for _, f := range forms[1:] {
		// A decoded space is fine ("a%20b"); a decoded control character
		// or backslash is not.
		if hasUnsafeByte(strings.ReplaceAll(f, " ", "")) {
			return false
		}
	}
	if httprule.IsLocalPath(target) {
		for _, f := range forms {
			if !httprule.IsLocalPath(f) {
				return false
			}
		}
		u, err := url.Parse(target)
		return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == ""
	}
	return p.allowedOrigin(target)
}

func (p RedirectPolicy) allowedOrigin(target string) bool {
	if len(p.Origins) == 0 {
		return false
	}
	u, err := url.Parse(target)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return false
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, o := range p.Origins {
		if origin == o {
			// The raw value must start with the origin as written, so that
			// no parser can read a different host from it.
			return strings.HasPrefix(strings.ToLower(target), o) &&
				(len(target) == len(o) || strings.ContainsRune("/?#", rune(target[len(o)])))
		}
	}
	return false
}

// hasUnsafeByte finds bytes browsers strip or reinterpret in URLs: control
// characters (tab and newline are removed, so "/\t/host" becomes "//host"),
// spaces, backslashes and DEL.
func hasUnsafeByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return true
		}
	}
	return false
}
