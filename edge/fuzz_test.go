package edge

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// FuzzCookieHeader: whatever the Cookie header holds, the session cookie
// read is bounded; after stripping a name, no pair a lenient framework could
// read under that name is left (split at ';' and ',', names trimmed of
// Unicode and Latin-1 spaces, percent-decoded, any letter case), while every
// ';'-separated part that holds no such pair is kept as it was.
func FuzzCookieHeader(f *testing.F) {
	for _, seed := range []string{
		"convex_session=abc; convex_jwt=x; theme=dark",
		"CONVEX_JWT=evil;convex_jwt=evil2",
		`convex_session="quoted"`,
		";;; =; a==b; convex_jwt",
		"convex_jwt=" + strings.Repeat("A", 300),
		"a=1\x00; convex_jwt=\xff",
		"a=b, convex_jwt=X",
		"\xa0convex_jwt=X; theme=dark",
		"convex%5Fjwt=X",
		"\u00a0CONVEX%5fJWT\u3000=X, b=c; d=e,f",
	} {
		f.Add(seed, "convex_jwt")
	}
	f.Fuzz(func(t *testing.T, header, name string) {
		if !ValidCookieName(name) {
			return
		}
		r := &http.Request{Header: http.Header{"Cookie": {header}}}
		if v, ok := readCookie(r, name); ok && (v == "" || len(v) > maxSessionCookieLen) {
			t.Fatalf("readCookie returned %d bytes", len(v))
		}
		var untouched []string // parts with no pair of that name
		for _, part := range strings.Split(header, ";") {
			part = strings.TrimSpace(part)
			if part != "" && !partHolds(part, name) {
				untouched = append(untouched, part)
			}
		}
		removeCookies(r, name)
		after := strings.Join(r.Header["Cookie"], "; ")
		for _, part := range strings.Split(after, ";") {
			if partHolds(part, name) {
				t.Fatalf("cookie %q survived stripping: %q", name, after)
			}
		}
		for _, part := range untouched {
			if !strings.Contains(after, part) {
				t.Fatalf("stripping %q lost %q from %q (now %q)", name, part, header, after)
			}
		}
		addCookie(r, name, "token")
		if v, ok := readCookie(r, name); !ok || v != "token" {
			t.Fatalf("injected cookie reads back as %q, %v", v, ok)
		}
	})
}

// partHolds is the test's own reading of a ';' part: does any of its
// ','-separated pairs carry name once trimmed, percent-decoded and folded?
// Bytes that are not UTF-8 are read as Latin-1, as Node reads headers.
func partHolds(part, name string) bool {
	trim := func(s string) string {
		return strings.TrimFunc(latin1Fallback(s), func(r rune) bool { return unicode.IsSpace(r) || r == '\ufeff' })
	}
	for _, pair := range strings.Split(part, ",") {
		k, _, _ := strings.Cut(pair, "=")
		k = trim(k)
		if d, err := url.PathUnescape(k); err == nil {
			k = trim(d)
		}
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func latin1Fallback(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			r = rune(s[i])
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// FuzzStripClientCopies: no spelling of the injected header survives.
func FuzzStripClientCopies(f *testing.F) {
	for _, seed := range []string{"X-Convex-Token", "x_convex_token", "X-CONVEX_TOKEN", "Convex-Auth-Sign-In", "convex_auth_sign_out", "X-Other"} {
		f.Add(seed)
	}
	g := newTestGateway(f, issuer.EdDSA, nil)
	f.Fuzz(func(t *testing.T, name string) {
		r := &http.Request{Header: http.Header{name: {"evil"}}}
		g.stripClientCopies(r)
		for k := range r.Header {
			switch strings.ToLower(strings.ReplaceAll(k, "_", "-")) {
			case "x-convex-token", "convex-auth-sign-in", "convex-auth-sign-out":
				t.Fatalf("header %q survived stripping", k)
			}
		}
	})
}

// FuzzUpstreamSignIn: an accepted Convex-Auth-Sign-In header always names a
// usable user ID.
func FuzzUpstreamSignIn(f *testing.F) {
	for _, seed := range []string{
		`{"sub":"user_1","email":"a@example.com","email_verified":true,"name":"A","picture":"https://x/y.png"}`,
		`{"sub":""}`, `{"sub":"a;b"}`, `{"sub":"x","admin":true}`, `{"sub":"x"} {"sub":"y"}`, `[]`, `null`, `{"sub":1}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		in, err := parseUpstreamSignIn(v)
		if err != nil {
			return
		}
		if strings.TrimSpace(in.Sub) == "" || len(in.Sub) > maxUpstreamSubjectLen || strings.ContainsAny(in.Sub, ";\x00") {
			t.Fatalf("accepted sub %q", in.Sub)
		}
	})
}

// removeCookies drops every cookie pair whose normalised name is one of
// names, ignoring case.
func removeCookies(r *http.Request, names ...string) {
	removeCookiesMatching(r, names, func(name string) bool { return foldedIn(name, names) })
}
