package authz

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// requestURL parses a request target as net/http's server does.
func requestURL(t testing.TB, target string) *url.URL {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("parse %q: %v", target, err)
	}
	return u
}

func mustRules(t testing.TB, configs ...RuleConfig) *Rules {
	t.Helper()
	rs, err := Compile(configs)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestPathVariantsAreOnePath(t *testing.T) {
	rs := mustRules(t, RuleConfig{Paths: []string{"/admin*"}})
	for _, target := range []string{
		"/admin", "/Admin", "/ADMIN/users", "//admin", "///admin/x", "/admin/../admin",
		"/x/../admin", "/./admin", "/%61dmin", "/%41DMIN/x", "/admin%2Fusers", "/foo/..//admin",
		"/admin/", "/admin?x=1", "/admin;x", "/adminpanel",
	} {
		if rs.Match(requestURL(t, target)) == nil {
			t.Errorf("%s is not protected by /admin*", target)
		}
	}
	for _, target := range []string{"/", "/public", "/x/admin", "/ad%6Din2/../../public", "/admi"} {
		if r := rs.Match(requestURL(t, target)); r != nil {
			t.Errorf("%s is protected by %s; want open", target, r.Path())
		}
	}
}

func TestPathKindsMatchAsCaddyDoes(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"/admin", []string{"/admin", "/ADMIN", "//admin", "/a/../admin"}, []string{"/admin/", "/admin/x", "/adminx"}},
		{"/admin/", []string{"/admin/", "//admin//"}, []string{"/admin", "/admin/x"}},
		{"*.json", []string{"/a/b.json", "/B.JSON"}, []string{"/a.json/x"}},
		{"*/secret/*", []string{"/a/secret/b", "/secret/x"}, []string{"/secretx"}},
		{"/api/*/admin", []string{"/api/v1/admin"}, []string{"/api/v1/v2/admin", "/api/v1/admin/x"}},
		{"/files/?.txt", []string{"/files/a.txt"}, []string{"/files/ab.txt"}},
		{"*", []string{"/", "/anything"}, nil},
		// Doubled slashes in the pattern: the path keeps its own.
		{"/a//b*", []string{"/a//b", "/A//B/c"}, []string{"/a/b"}},
		// An escape in the pattern compares that part in escaped space.
		{"/a%2fb", []string{"/a%2fb", "/a%2Fb"}, []string{"/a/b", "/a%2fbc"}},
		{"/user/%*/edit", []string{"/user/a%2Fb/edit", "/user/x/edit"}, []string{"/user/x/view"}},
	}
	for _, c := range cases {
		pp, err := CompilePath(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		for _, target := range c.match {
			if !pp.Matches(requestURL(t, target)) {
				t.Errorf("%s does not match %s", c.pattern, target)
			}
		}
		for _, target := range c.miss {
			if pp.Matches(requestURL(t, target)) {
				t.Errorf("%s matches %s", c.pattern, target)
			}
		}
	}
}

func TestCompilePathRefusesWhatWouldNeverMatch(t *testing.T) {
	for p, want := range map[string]string{
		"":            "empty",
		"admin*":      "must start with /",
		"/{env.X}*":   "placeholder",
		"/a[":         "not a valid pattern",
		"/files/[z-a": "not a valid pattern",
	} {
		_, err := CompilePath(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompilePath(%q) = %v; want an error saying %q", p, err, want)
		}
	}
}

// TestMostSpecificBlockWins: overlapping blocks are tried in the order
// Caddy gives handle blocks, and only the first matching one applies.
func TestMostSpecificBlockWins(t *testing.T) {
	rs := mustRules(t,
		RuleConfig{Paths: []string{"/loggedin*"}},
		RuleConfig{Paths: []string{"/loggedin/admin*"}, Allow: []Criterion{{Kind: KindClaim, Claim: "role", Values: []string{"admin"}}}},
		RuleConfig{Paths: []string{"/loggedin/admin"}, Allow: []Criterion{{Kind: KindUser, Values: []string{"root"}}}},
		RuleConfig{Paths: []string{"*"}, Deny: []Criterion{{Kind: KindProvider, Values: []string{"guest"}}}},
	)
	if got, want := strings.Join(rs.Paths(), " "), "/loggedin/admin /loggedin/admin* /loggedin* *"; got != want {
		t.Fatalf("order %q; want %q", got, want)
	}
	for target, want := range map[string]string{
		"/loggedin/admin":       "/loggedin/admin",
		"/loggedin/admin/users": "/loggedin/admin*",
		"/LOGGEDIN/ADMINS":      "/loggedin/admin*",
		"/loggedin/x":           "/loggedin*",
		"/":                     "*",
	} {
		if r := rs.Match(requestURL(t, target)); r == nil || r.Path() != want {
			t.Errorf("%s is decided by %v; want %s", target, r, want)
		}
	}
}

func TestMoreSpecificIsCaddysOrder(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"/a/b", "/a"},   // longer first
		{"/a", "/a*"},    // exact before its wildcard
		{"/abc*", "/ab"}, // trimmed lengths
		{"/ab*", "/ac*"}, // equal lengths: lexical
		{"/a/b*", "/a*"}, // longer prefix first
		{"/x*", "*"},     // the catch-all last
		{"/a/*.json", "/a*"},
	} {
		if !moreSpecific(c.a, c.b) || moreSpecific(c.b, c.a) {
			t.Errorf("want %s before %s", c.a, c.b)
		}
	}
}

func TestCompileRefusesDuplicatesAndNamesTheLine(t *testing.T) {
	_, err := Compile([]RuleConfig{{Paths: []string{"/admin*"}}, {Paths: []string{"/ADMIN*"}}})
	if err == nil || !strings.Contains(err.Error(), "protected twice") {
		t.Fatalf("duplicate path: %v", err)
	}
	_, err = Compile([]RuleConfig{{Paths: []string{"/admin*"}, Allow: []Criterion{{Kind: "group", Values: []string{"x"}}}}})
	if err == nil || !strings.Contains(err.Error(), `unknown criterion "group"`) || !strings.Contains(err.Error(), "/admin*") {
		t.Fatalf("unknown criterion: %v", err)
	}
}

// cleanOracle is Caddy's cleaning written plainly: path.Clean, keeping a
// trailing slash.
func cleanOracle(p string) string {
	c := path.Clean(p)
	if c != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c
}

// FuzzProtectedPrefixHasNoBypass: whatever the request target, a path
// whose cleaned, lower-cased form is under /admin is protected by
// /admin*, and the exact pattern /admin matches exactly its one path.
func FuzzProtectedPrefixHasNoBypass(f *testing.F) {
	for _, s := range []string{
		"/admin", "//admin", "/Admin/../admin", "/%2e%2e/admin", "/admin/./x", "/a/..%2fadmin",
		"/.%2e/admin", "/admin%00", "/\u212aelvin", "/ADMİN", "/admin/", "/%61%64%6d%69%6e",
	} {
		f.Add(s)
	}
	prefix := mustRules(f, RuleConfig{Paths: []string{"/admin*"}})
	exact := mustRules(f, RuleConfig{Paths: []string{"/admin"}})
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		cleaned := cleanOracle(strings.ToLower(u.Path))
		if got, want := prefix.Match(u) != nil, strings.HasPrefix(cleaned, "/admin"); got != want {
			t.Fatalf("/admin* on %q (cleaned %q): matched %v, want %v", target, cleaned, got, want)
		}
		if got, want := exact.Match(u) != nil, cleaned == "/admin"; got != want {
			t.Fatalf("/admin on %q (cleaned %q): matched %v, want %v", target, cleaned, got, want)
		}
	})
}

func TestCleanPathReusesACleanPath(t *testing.T) {
	for _, p := range []string{"/", "/a", "/a/", "/a/b/", "//a//", "/a/../b/", "/./", "/a/.", "/a/./"} {
		if got, want := cleanPath(p), cleanOracle(p); got != want {
			t.Errorf("cleanPath(%q) = %q; want %q", p, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = cleanPath("/loggedin/admin/") }); n != 0 {
		t.Fatalf("cleanPath of a clean path with a trailing slash allocates %v times", n)
	}
}
