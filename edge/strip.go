package edge

import (
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

// Response headers by which a trusted upstream signs a user in or out.
const (
	HeaderUpstreamSignIn  = "Convex-Auth-Sign-In"
	HeaderUpstreamSignOut = "Convex-Auth-Sign-Out"
)

// stripClientCopies removes what only the gateway may put in a request: the
// injected header and DefaultInjectHeader in any case or -/_ spelling, every
// injectable cookie, and the upstream sign-in headers.
func (g *Gateway) stripClientCopies(r *http.Request) {
	for name := range r.Header {
		if g.reserved(name) {
			delete(r.Header, name)
		}
	}
	g.injectCookie.strip(r)
	if len(r.Trailer) > 0 {
		g.stripRequestTrailers(r)
	}
}

// reserved reports whether a header name is one only the gateway may set.
func (g *Gateway) reserved(name string) bool {
	return sameHeaderName(name, g.cfg.InjectHeader) || sameHeaderName(name, DefaultInjectHeader) ||
		sameHeaderName(name, HeaderUpstreamSignIn) || sameHeaderName(name, HeaderUpstreamSignOut)
}

// stripRequestTrailers drops client trailers that carry a reserved name (a
// Cookie trailer could carry the injected cookie). The server fills
// r.Trailer only when the body has been read, so the declared ones go now
// and any others when the body ends.
func (g *Gateway) stripRequestTrailers(r *http.Request) {
	strip := func() {
		for name := range r.Trailer {
			if g.reserved(name) || sameHeaderName(name, "Cookie") {
				delete(r.Trailer, name)
			}
		}
	}
	strip()
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerStrippingBody{ReadCloser: r.Body, strip: strip}
	}
}

// trailerStrippingBody runs strip when the body is read to its end, after
// the server has filled in the request's trailers.
type trailerStrippingBody struct {
	io.ReadCloser
	strip func()
}

func (b *trailerStrippingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.strip()
	}
	return n, err
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

// stripSignInCookies removes the sign-in's own cookies (the last-used
// hint, the failed form's flash) from a request on its way upstream; the
// sign-in pages read them.
func (g *Gateway) stripSignInCookies(r *http.Request) {
	if len(g.signInCookies) > 0 {
		removeCookiesProbed(r, signInCookieProbes, g.signInCookies)
	}
}

var signInCookieProbes = []string{signin.LastUsedCookieProbe, signin.FlashCookieProbe}
