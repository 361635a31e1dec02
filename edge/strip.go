package edge

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// Response headers by which a trusted upstream signs a user in or out.
const (
	HeaderUpstreamSignIn  = "Convex-Auth-Sign-In"
	HeaderUpstreamSignOut = "Convex-Auth-Sign-Out"
)

// stripClientCopies removes what only the gateway may put in a request: the
// injected header in any case or -/_ spelling, the injected cookie, and the
// upstream sign-in headers.
func (g *Gateway) stripClientCopies(r *http.Request) {
	for name := range r.Header {
		if sameHeaderName(name, g.cfg.InjectHeader) || sameHeaderName(name, HeaderUpstreamSignIn) || sameHeaderName(name, HeaderUpstreamSignOut) {
			delete(r.Header, name)
		}
	}
	g.injectCookie.strip(r)
}

// sameHeaderName reports whether two header names are the same ignoring
// case and taking _ for -. It runs for every header of every request, so
// ASCII names, the only ones HTTP servers accept, are compared without
// allocating.
func sameHeaderName(a, b string) bool {
	for i := 0; i < len(a); i++ {
		if a[i] >= utf8.RuneSelf {
			return normalizeHeaderName(a) == normalizeHeaderName(b)
		}
	}
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func normalizeHeaderName(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}
