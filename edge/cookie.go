package edge

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Session cookie names when none is configured. The __Host- prefix pins the
// cookie to this host over HTTPS; browsers refuse it on plain http. A
// gateway with a realm (WithRealm) ends either name with "_" and the first
// cookieRealmTagLen characters of the realm's tag: browsers send a host's
// cookies to all its ports, so two realms on one host (localhost:8080 and
// localhost:9090) would otherwise overwrite each other's session cookie.
const (
	DefaultCookieName       = "convex_session"
	DefaultSecureCookieName = "__Host-convex_session"
	DefaultCookiePath       = "/"

	cookieRealmTagLen = 8
)

// DefaultCookieNameFor is the default session cookie name of realm, over
// HTTPS (secure) or on plain http.
func DefaultCookieNameFor(realm string, secure bool) string {
	name := DefaultCookieName
	if secure {
		name = DefaultSecureCookieName
	}
	return name + realmSuffix(realm)
}

func realmSuffix(realm string) string {
	return "_" + session.RealmTag(realm)[:cookieRealmTagLen]
}

// CookieSettings is the session cookie's configuration. It is always
// HttpOnly; Secure is set except for plain-http requests to localhost.
type CookieSettings struct {
	name string // configured name, or "" for the defaults
	// The default names, the realm's own once WithRealm made them so
	// (built once: not a concatenation per request).
	plainName, secureName string
	domain                string
	path                  string
	sameSite              http.SameSite
}

// requestCookie is the cookie as it applies to one request.
type requestCookie struct {
	CookieSettings
	secure bool
}

// NewCookieSettings checks the session cookie's options: name (empty for
// the defaults), domain, path (default "/") and sameSite (lax, strict or
// none; default lax). Each error names its option.
func NewCookieSettings(name, domain, path, sameSite string) (CookieSettings, error) {
	s := CookieSettings{name: name, domain: domain, path: path, plainName: DefaultCookieName, secureName: DefaultSecureCookieName}
	if s.path == "" {
		s.path = DefaultCookiePath
	}
	if !strings.HasPrefix(s.path, "/") {
		return s, fmt.Errorf("cookie path %q must start with /", path)
	}
	if name != "" && !ValidCookieName(name) {
		return s, fmt.Errorf("cookie name %q is not a valid cookie name", name)
	}
	if strings.HasPrefix(name, "__Host-") && (domain != "" || s.path != "/") {
		return s, fmt.Errorf("cookie name %q uses the __Host- prefix, which allows no domain and only path /", name)
	}
	switch strings.ToLower(sameSite) {
	case "", "lax":
		s.sameSite = http.SameSiteLaxMode
	case "strict":
		s.sameSite = http.SameSiteStrictMode
	case "none":
		s.sameSite = http.SameSiteNoneMode
	default:
		return s, fmt.Errorf("cookie same_site %q is unknown: use lax, strict or none", sameSite)
	}
	return s, nil
}

// WithRealm returns the settings with the default names made realm's own;
// a configured name is kept as it is.
func (s CookieSettings) WithRealm(realm string) CookieSettings {
	suffix := realmSuffix(realm)
	s.plainName, s.secureName = DefaultCookieName+suffix, DefaultSecureCookieName+suffix
	return s
}

// NameFor is the session cookie's name for r.
func (s CookieSettings) NameFor(r *http.Request) string { return s.forRequest(r).name }

func (s CookieSettings) forRequest(r *http.Request) requestCookie {
	rc := requestCookie{CookieSettings: s, secure: httprule.SecureRequest(r)}
	if rc.name == "" {
		rc.name = s.plainName
		if rc.secure && rc.domain == "" && rc.path == "/" {
			rc.name = s.secureName
		}
	}
	return rc
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

// removeCookiesMatching drops every cookie pair whose name, read the ways
// common frameworks read it, match accepts: pairs split at ';' and also at
// ',' (a few parsers take a comma for a separator), the name trimmed of
// Unicode spaces and of a Latin-1 no-break space (0xA0) and
// percent-decoded. Every other pair is kept as it was sent. A Cookie
// header that contains none of probes (each a part of every name match
// accepts) in any case is left as it is.
func removeCookiesMatching(r *http.Request, probes []string, match func(name string) bool) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 || !mayHoldCookie(lines, probes) {
		return
	}
	// One pass into one buffer: this runs on most requests (the session
	// cookie is removed before the request goes upstream).
	var kept strings.Builder
	kept.Grow(len(lines[0]))
	keep := func(part string) {
		if kept.Len() > 0 {
			kept.WriteString("; ")
		}
		kept.WriteString(part)
	}
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if !strings.Contains(part, ",") {
				if !cookieMatches(part, match) {
					keep(part)
				}
				continue
			}
			subparts := strings.Split(part, ",")
			left := subparts[:0]
			for _, sp := range subparts {
				if !cookieMatches(sp, match) {
					left = append(left, sp)
				}
			}
			if len(left) == len(subparts) {
				keep(part)
			} else if joined := strings.TrimSpace(strings.Join(left, ",")); joined != "" {
				keep(joined)
			}
		}
	}
	if kept.Len() == 0 {
		delete(r.Header, "Cookie")
		return
	}
	// The request's own slice takes the one line: no new slice.
	lines[0] = kept.String()
	r.Header["Cookie"] = lines[:1]
}

// mayHoldCookie is removeCookiesMatching's fast path: a line can hold one of names
// only if it contains it, or a byte that normalisation could turn into it.
func mayHoldCookie(lines []string, names []string) bool {
	for _, line := range lines {
		if strings.ContainsAny(line, "%,") {
			return true
		}
		for i := 0; i < len(line); i++ {
			if line[i] >= utf8.RuneSelf {
				return true
			}
		}
		for _, name := range names {
			if containsFold(line, name) {
				return true
			}
		}
	}
	return false
}

// cookieMatches reports whether a name=value pair's name, normalised, is
// one match accepts.
func cookieMatches(pair string, match func(name string) bool) bool {
	k, _, _ := strings.Cut(pair, "=")
	return match(normalizeCookieName(k))
}

// foldedIn reports whether name is one of names ignoring case.
func foldedIn(name string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// normalizeCookieName reads a cookie name as lenient frameworks do: trimmed
// of spaces (Unicode ones, and the raw Latin-1 bytes 0xA0 and 0x85), then
// percent-decoded, then trimmed again.
func normalizeCookieName(k string) string {
	k = trimCookieSpace(k)
	if strings.Contains(k, "%") {
		if d, err := url.PathUnescape(k); err == nil {
			k = trimCookieSpace(d)
		}
	}
	return k
}

func trimCookieSpace(s string) string {
	for s != "" {
		r, size := utf8.DecodeRuneInString(s)
		if !cookieSpace(r, size, s[0]) {
			break
		}
		s = s[size:]
	}
	for s != "" {
		r, size := utf8.DecodeLastRuneInString(s)
		if !cookieSpace(r, size, s[len(s)-1]) {
			break
		}
		s = s[:len(s)-size]
	}
	return s
}

// cookieSpace: a Unicode space, or a byte that is not UTF-8 but is a space
// in Latin-1 (no-break space 0xA0, next line 0x85).
func cookieSpace(r rune, size int, b byte) bool {
	if r == utf8.RuneError && size == 1 {
		return b == 0xA0 || b == 0x85
	}
	return unicode.IsSpace(r) || r == '\ufeff'
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

// ValidCookieName accepts RFC 6265 token characters.
func ValidCookieName(name string) bool {
	return name != "" && isToken(name)
}

// ValidHeaderName accepts RFC 9110 token characters.
func ValidHeaderName(name string) bool {
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
