package edge

import (
	"net/http"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// FuzzCookieHeader: whatever the Cookie header holds, the session cookie
// read is bounded, and after stripping a name no cookie of that name (in any
// letter case) is left while every other cookie is kept.
func FuzzCookieHeader(f *testing.F) {
	for _, seed := range []string{
		"convex_session=abc; convex_jwt=x; theme=dark",
		"CONVEX_JWT=evil;convex_jwt=evil2",
		`convex_session="quoted"`,
		";;; =; a==b; convex_jwt",
		"convex_jwt=" + strings.Repeat("A", 300),
		"a=1\x00; convex_jwt=\xff",
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
		others := 0
		for _, part := range strings.Split(header, ";") {
			part = strings.TrimSpace(part)
			k, _, _ := strings.Cut(part, "=")
			if part != "" && !strings.EqualFold(strings.TrimSpace(k), name) {
				others++
			}
		}
		removeCookies(r, name)
		kept := 0
		for _, line := range r.Header["Cookie"] {
			for _, part := range strings.Split(line, ";") {
				part = strings.TrimSpace(part)
				k, _, _ := strings.Cut(part, "=")
				if strings.EqualFold(strings.TrimSpace(k), name) {
					t.Fatalf("cookie %q survived stripping: %q", name, line)
				}
				if part != "" {
					kept++
				}
			}
		}
		if kept != others {
			t.Fatalf("stripping %q kept %d of %d other cookies from %q", name, kept, others, header)
		}
		addCookie(r, name, "token")
		if v, ok := readCookie(r, name); !ok || v != "token" {
			t.Fatalf("injected cookie reads back as %q, %v", v, ok)
		}
	})
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
