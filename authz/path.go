package authz

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"runtime"
	"strings"
)

// The path matching below follows Caddy v2.11.9's path matcher
// (modules/caddyhttp/matchers.go, MatchPath; Apache-2.0) step for step, so
// that a protected path is exactly the set of requests a `path` matcher with
// the same pattern matches: the request path is lower-cased and cleaned
// (dot segments resolved, doubled slashes merged unless the pattern has
// "//"), a pattern with "%" compares in escaped space, "*" at one or both
// ends is a prefix, suffix or substring match, and anything else is a
// path.Match glob. caddymodule's differential fuzz test holds the two
// together. Only placeholders are left out: a protected path is a literal.

// PathPattern is one compiled path pattern.
type PathPattern struct {
	raw  string // as configured
	pat  string // lower-cased
	kind patternKind
	lit  string // prefix, suffix or substring kinds: the pattern without its *
	// mergeSlashes: the request path's doubled slashes are merged before
	// comparing, unless the pattern itself has "//".
	mergeSlashes bool
}

type patternKind uint8

const (
	patternAll       patternKind = iota // "*"
	patternEscaped                      // has '%': compared in escaped space
	patternSubstring                    // "*lit*"
	patternSuffix                       // "*lit"
	patternPrefix                       // "lit*"
	patternGlob                         // path.Match, exact without glob characters
)

// CompilePath checks and compiles a protected path pattern in Caddy's path
// matcher syntax.
func CompilePath(p string) (PathPattern, error) {
	switch {
	case p == "":
		return PathPattern{}, errors.New("a protected path is empty: use e.g. /admin*")
	case strings.Contains(p, "{"):
		return PathPattern{}, fmt.Errorf("protected path %q has a placeholder: use a literal path (placeholders in paths are not supported here)", p)
	case !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*"):
		return PathPattern{}, fmt.Errorf("protected path %q must start with / or * (e.g. /%s): request paths start with /", p, p)
	}
	lower := strings.ToLower(p)
	// A malformed glob never matches in Caddy; here it would leave a path
	// open that its author meant to protect, so it is an error.
	if _, err := path.Match(strings.ReplaceAll(lower, "%*", "*"), ""); err != nil {
		return PathPattern{}, fmt.Errorf("protected path %q is not a valid pattern (%v): escape [ ] \\ with \\ or use * and ?", p, err)
	}
	pp := PathPattern{raw: p, pat: lower, mergeSlashes: !strings.Contains(lower, "//")}
	stars := strings.Count(lower, "*")
	switch {
	case lower == "*":
		pp.kind = patternAll
	case strings.Contains(lower, "%"):
		pp.kind = patternEscaped
	case stars == 2 && strings.HasPrefix(lower, "*") && strings.HasSuffix(lower, "*"):
		pp.kind, pp.lit = patternSubstring, lower[1:len(lower)-1]
	case stars == 1 && strings.HasPrefix(lower, "*"):
		pp.kind, pp.lit = patternSuffix, lower[1:]
	case stars == 1 && strings.HasSuffix(lower, "*"):
		pp.kind, pp.lit = patternPrefix, lower[:len(lower)-1]
	default:
		pp.kind = patternGlob
	}
	return pp, nil
}

// String returns the pattern as configured.
func (p PathPattern) String() string { return p.raw }

// requestPath is one request's path, prepared once for every pattern: the
// decoded path lower-cased, and its two cleaned forms made when first
// needed.
type requestPath struct {
	u      *url.URL
	lower  string
	merged string // cleaned, doubled slashes merged
	kept   string // cleaned, doubled slashes kept
	done   uint8  // bit 0: merged made, bit 1: kept made
}

func newRequestPath(u *url.URL) requestPath {
	return requestPath{u: u, lower: normalizeWindowsPath(strings.ToLower(u.Path))}
}

func (rp *requestPath) cleaned(mergeSlashes bool) string {
	if mergeSlashes {
		if rp.done&1 == 0 {
			rp.merged, rp.done = cleanPath(rp.lower), rp.done|1
		}
		return rp.merged
	}
	if rp.done&2 == 0 {
		rp.kept, rp.done = cleanPathKeepSlashes(rp.lower), rp.done|2
	}
	return rp.kept
}

// Matches reports whether u's path matches the pattern.
func (p *PathPattern) Matches(u *url.URL) bool {
	rp := newRequestPath(u)
	return p.matches(&rp)
}

func (p *PathPattern) matches(rp *requestPath) bool {
	switch p.kind {
	case patternAll:
		return true
	case patternEscaped:
		escapedPath := rp.u.EscapedPath()
		pat := p.pat
		if runtime.GOOS == "windows" {
			escapedPath = windowsEscapedPathSeparatorRepl.Replace(escapedPath)
			pat = windowsEscapedPathSeparatorRepl.Replace(pat)
			escapedPath = normalizeWindowsEscapedPath(escapedPath)
		}
		var cleaned string
		if p.mergeSlashes {
			cleaned = cleanPath(escapedPath)
		} else {
			cleaned = cleanPathKeepSlashes(escapedPath)
		}
		return matchEscaped(cleaned, pat)
	}
	reqPath := rp.cleaned(p.mergeSlashes)
	switch p.kind {
	case patternSubstring:
		return strings.Contains(reqPath, p.lit)
	case patternSuffix:
		return strings.HasSuffix(reqPath, p.lit)
	case patternPrefix:
		return strings.HasPrefix(reqPath, p.lit)
	}
	ok, _ := path.Match(p.pat, reqPath)
	return ok
}

// cleanPath is path.Clean keeping a trailing slash (Caddy's cleanPath). It
// reuses p's bytes where the cleaned path is a prefix of p, so a path that
// is already clean costs no allocation, trailing slash or not.
func cleanPath(p string) string {
	cleaned := path.Clean(p)
	if cleaned != "/" && strings.HasSuffix(p, "/") {
		if len(p) > len(cleaned) && p[len(cleaned)] == '/' && p[:len(cleaned)] == cleaned {
			return p[:len(cleaned)+1]
		}
		cleaned += "/"
	}
	return cleaned
}

// cleanPathKeepSlashes cleans p without merging doubled slashes (Caddy's
// CleanPath(p, false)): each empty segment gets a placeholder byte that no
// URI holds, the path is cleaned, and the placeholders are removed.
func cleanPathKeepSlashes(p string) string {
	const tmpCh = 0xff
	var sb strings.Builder
	sb.Grow(len(p) + 1)
	for i, ch := range p {
		if ch == '/' && i > 0 && p[i-1] == '/' {
			sb.WriteByte(tmpCh)
		}
		sb.WriteRune(ch)
	}
	halfCleaned := cleanPath(sb.String())
	return strings.ReplaceAll(halfCleaned, string([]byte{tmpCh}), "")
}

// matchEscaped compares a pattern holding '%' with the escaped path: in
// escaped space where the pattern has an escape sequence (or "%*"), in
// decoded space elsewhere (Caddy's matchPatternWithEscapeSequence).
func matchEscaped(escapedPath, matchPath string) bool {
	escapedPath = strings.ToLower(escapedPath)
	var sb strings.Builder
	sb.Grow(len(escapedPath))
	var iPattern, iPath int
	for iPattern < len(matchPath) && iPath < len(escapedPath) {
		pathCh := string(escapedPath[iPath])
		var escapedPathCh string
		if pathCh == "%" && len(escapedPath) >= iPath+3 {
			escapedPathCh = strings.ToLower(escapedPath[iPath : iPath+3])
			var err error
			pathCh, err = url.PathUnescape(escapedPathCh)
			if err != nil {
				return false
			}
			iPath += 2
		}
		normalize := true
		switch matchPath[iPattern] {
		case '%':
			if len(matchPath) >= iPattern+3 && matchPath[iPattern+1] != '*' {
				sb.WriteString(escapedPathCh)
				iPath++
				iPattern += 2
				break
			}
			iPattern++
			normalize = false
			fallthrough
		case '*':
			remaining := escapedPath[iPath:]
			until := len(escapedPath) - iPath
			if iPattern < len(matchPath)-1 {
				nextCh := matchPath[iPattern+1]
				until = strings.IndexByte(remaining, nextCh)
				if until == -1 {
					return false
				}
			}
			if until == 0 {
				break
			}
			next := remaining[:until]
			if normalize {
				var err error
				if next, err = url.PathUnescape(next); err != nil {
					return false
				}
			}
			sb.WriteString(next)
			iPath += until
		default:
			sb.WriteString(pathCh)
			iPath++
		}
		iPattern++
	}
	// What the pattern did not reach is compared decoded, so that a pattern
	// without a trailing wildcard does not act as a prefix.
	if iPath < len(escapedPath) {
		remaining := escapedPath[iPath:]
		if unescaped, err := url.PathUnescape(remaining); err == nil {
			sb.WriteString(unescaped)
		} else {
			sb.WriteString(remaining)
		}
	}
	matchPath = strings.ReplaceAll(matchPath, "%*", "*")
	ok, _ := path.Match(matchPath, strings.ToLower(sb.String()))
	return ok
}

// On Windows, Caddy first rewrites a path the way the Windows filesystem
// resolves it (backslashes are separators; trailing dots and spaces of each
// segment are ignored); elsewhere these are no-ops.

func normalizeWindowsPath(p string) string {
	if runtime.GOOS != "windows" {
		return p
	}
	p = strings.ReplaceAll(p, `\`, "/")
	segments := strings.Split(p, "/")
	for i, s := range segments {
		if s == "." || s == ".." {
			continue
		}
		segments[i] = strings.TrimRight(s, ". ")
	}
	return strings.Join(segments, "/")
}

var windowsEscapedPathSeparatorRepl = strings.NewReplacer(`\`, "%2f", "%5c", "%2f", "%5C", "%2f")

func normalizeWindowsEscapedPath(p string) string {
	if runtime.GOOS != "windows" {
		return p
	}
	var sb strings.Builder
	sb.Grow(len(p))
	start := 0
	flush := func(end int) {
		seg := p[start:end]
		if seg != "." && seg != ".." {
			seg = trimWindowsEscapedTrailingDotSpace(seg)
		}
		sb.WriteString(seg)
	}
	for i := 0; i < len(p); {
		switch {
		case p[i] == '/':
			flush(i)
			sb.WriteByte('/')
			i++
			start = i
		case p[i] == '%' && i+3 <= len(p) && p[i+1] == '2' && (p[i+2] == 'f' || p[i+2] == 'F'):
			flush(i)
			sb.WriteString(p[i : i+3])
			i += 3
			start = i
		default:
			i++
		}
	}
	flush(len(p))
	return sb.String()
}

func trimWindowsEscapedTrailingDotSpace(s string) string {
	for len(s) > 0 {
		if c := s[len(s)-1]; c == '.' || c == ' ' {
			s = s[:len(s)-1]
			continue
		}
		if len(s) >= 3 {
			if tail := s[len(s)-3:]; strings.EqualFold(tail, "%2e") || tail == "%20" {
				s = s[:len(s)-3]
				continue
			}
		}
		return s
	}
	return s
}
