package caddymodule

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/convex-auth/caddy-convex-auth/authz"
)

// FuzzProtectMatchesCaddyPathMatcher holds authz's path matching to
// Caddy's own path matcher: for any pattern protect accepts and any
// request target net/http parses, the two agree.
func FuzzProtectMatchesCaddyPathMatcher(f *testing.F) {
	seeds := []struct{ pattern, target string }{
		{"/admin*", "//Admin/../admin/x"},
		{"/admin", "/admin/"},
		{"/admin/", "/admin"},
		{"*.json", "/a/B.JSON"},
		{"*/secret/*", "/x/secret/y"},
		{"/api/*/admin", "/api/v1/admin"},
		{"/a//b*", "/a//b/c"},
		{"/a%2fb", "/a%2Fb"},
		{"/user/%*/edit", "/user/a%2Fb/edit"},
		{"/files/[a-c]?.txt", "/files/b1.txt"},
		{"*", "/"},
		{"/loggedin*", "/%6Coggedin"},
		{"/x*", "/x%00"},
		{"/é*", "/%C3%A9t%C3%A9"},
		{"/a%*", "/a%25"},
	}
	for _, s := range seeds {
		f.Add(s.pattern, s.target)
	}
	f.Fuzz(func(t *testing.T, pattern, target string) {
		pp, err := authz.CompilePath(pattern)
		if err != nil {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		m := caddyhttp.MatchPath{pattern}
		if err := m.Provision(caddy.Context{}); err != nil {
			t.Fatal(err)
		}
		r := &http.Request{Method: http.MethodGet, URL: u}
		r = r.WithContext(context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		want, _ := m.MatchWithError(r)
		if got := pp.Matches(u); got != want {
			t.Fatalf("pattern %q, target %q (path %q): authz matched %v, Caddy %v", pattern, target, u.Path, got, want)
		}
	})
}
