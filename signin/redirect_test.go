package signin

import (
	"net/url"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

func testPolicy(t testing.TB) RedirectPolicy {
	p, err := NewRedirectPolicy("/after", []string{"https://docs.example.com", "HTTP://LocalHost:3000"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRedirectToTable(t *testing.T) {
	p := testPolicy(t)
	cases := map[string]bool{
		// Honoured.
		"/loggedin?x=1":                      true,
		"/":                                  true,
		"/a/b#frag":                          true,
		"/search?q=a%20b":                    true,
		"https://docs.example.com":           true,
		"https://docs.example.com/guide?x=1": true,
		"https://DOCS.example.com/guide":     true,
		"http://localhost:3000/":             true,
		"https://docs.example.com#top":       true,
		"https://docs.example.com?x=1":       true,
		"/%E2%9C%93":                         true,
		"/path/with%2Fencoded-slash-inside":  true,
		// Refused: fall back to after_sign_in.
		"":                                      false,
		"//evil.example":                        false,
		"///evil.example":                       false,
		`/\evil.example`:                        false,
		`\/evil.example`:                        false,
		`\\evil.example`:                        false,
		"/\\/evil.example":                      false,
		"https:evil.example":                    false,
		"https://evil.example":                  false,
		"http://docs.example.com":               false, // other scheme, other origin
		"https://docs.example.com.evil.example": false,
		"https://docs.example.com@evil.example": false,
		"https://user@docs.example.com/":        false,
		"https://docs.example.com:8443/":        false,
		"%2F%2Fevil.example":                    false,
		"/%2F/evil.example":                     false,
		"/%2f%2fevil.example":                   false,
		"/%5Cevil.example":                      false,
		"/%5cevil.example":                      false,
		"/%255Cevil.example":                    false, // double-encoded
		"javascript:alert(1)":                   false,
		"JavaScript:alert(1)":                   false,
		"data:text/html,hi":                     false,
		"/\t/evil.example":                      false,
		"/\n/evil.example":                      false,
		"/\r/evil.example":                      false,
		"\t//evil.example":                      false,
		" /loggedin":                            false,
		"/%09/evil.example":                     false,
		"/%0A/evil.example":                     false,
		"/%00":                                  false,
		"/\x7f":                                 false,
		"evil.example":                          false,
		"loggedin":                              false,
		"/" + strings.Repeat("a", 3000):         false,
	}
	for target, want := range cases {
		if got := p.Allowed(target); got != want {
			t.Errorf("Allowed(%q) = %v; want %v", target, got, want)
		}
		wantResolved := p.AfterSignIn
		if want {
			wantResolved = target
		}
		if got := p.Resolve(target); got != wantResolved {
			t.Errorf("Resolve(%q) = %q; want %q", target, got, wantResolved)
		}
	}
}

func TestRedirectPolicyConfig(t *testing.T) {
	if p, err := NewRedirectPolicy("", nil); err != nil || p.AfterSignIn != "/" {
		t.Fatalf("defaults: %+v, %v", p, err)
	}
	if _, err := NewRedirectPolicy("https://app.example.com/welcome", nil); err != nil {
		t.Fatalf("an absolute after_sign_in: %v", err)
	}
	for _, bad := range []string{"//evil.example", "javascript:alert(1)", "welcome"} {
		if _, err := NewRedirectPolicy(bad, nil); err == nil {
			t.Errorf("after_sign_in %q accepted", bad)
		}
	}
	for _, bad := range []string{"docs.example.com", "https://docs.example.com/path", "https://docs.example.com?x", "ftp://x", "https://u@x.example"} {
		if _, err := NewRedirectPolicy("/", []string{bad}); err == nil {
			t.Errorf("redirect origin %q accepted", bad)
		}
	}
}

// FuzzRedirectTo asserts that whatever the policy accepts, a browser on the
// site resolves to a URL on the site or on a configured origin.
func FuzzRedirectTo(f *testing.F) {
	for _, seed := range []string{"/loggedin?x=1", "//evil.example", `/\evil`, "https://docs.example.com/x",
		"https:evil.example", "%2F%2Fevil", "/%5Cevil", "javascript:alert(1)", "/\t/evil", "https://docs.example.com@evil.example",
		"/a/../..//evil", "https://docs.example.com\\@evil.example"} {
		f.Add(seed)
	}
	p := testPolicy(f)
	site, _ := url.Parse("https://app.example.com/auth/signin")
	f.Fuzz(func(t *testing.T, target string) {
		if !p.Allowed(target) {
			if p.Resolve(target) != p.AfterSignIn {
				t.Fatalf("refused %q but Resolve did not fall back", target)
			}
			return
		}
		if strings.ContainsAny(target, "\\\t\r\n\x00") {
			t.Fatalf("accepted %q with a backslash or control character", target)
		}
		u, err := url.Parse(target)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", target, err)
		}
		abs := site.ResolveReference(u)
		origin := strings.ToLower(abs.Scheme + "://" + abs.Host)
		if httprule.IsLocalPath(target) {
			if abs.Host != site.Host || abs.User != nil {
				t.Fatalf("local path %q resolves to %s", target, abs)
			}
			return
		}
		for _, o := range p.Origins {
			if origin == o && abs.User == nil {
				return
			}
		}
		t.Fatalf("accepted %q, which resolves to %s: neither local nor a configured origin", target, abs)
	})
}
