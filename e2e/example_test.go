package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleCaddyfile runs Caddyfile.example as the README's first command
// does: discovery and JWKS at the issuer, the protected page redirects, a
// demo sign-in leads to a page that shows the token's claims.
func TestExampleCaddyfile(t *testing.T) {
	bin := caddyBin(t)
	example, err := filepath.Abs("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	demoRoot, _ := filepath.Abs("../demo")
	const origin = "http://localhost:8080"
	p := startCaddyFile(t, bin, example, t.TempDir(), origin+"/.well-known/openid-configuration", "CONVEX_AUTH_DEMO_ROOT="+demoRoot)
	if !strings.Contains(p.Log(), "no redis configured") {
		t.Error("the in-process store was not announced as development-only in the log")
	}

	resp, body := request(t, "GET", origin+"/.well-known/openid-configuration", nil)
	var disco map[string]any
	if err := json.Unmarshal([]byte(body), &disco); err != nil {
		t.Fatal(err)
	}
	if disco["issuer"] != origin || disco["jwks_uri"] != origin+"/.well-known/jwks.json" || resp.Header.Get("Cache-Control") != "public, max-age=15, stale-while-revalidate=15, stale-if-error=86400" {
		t.Fatalf("discovery: %v %v", disco, resp.Header)
	}
	resp, body = request(t, "GET", origin+"/.well-known/jwks.json", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"use":"sig"`) || strings.Contains(body, `"d":`) {
		t.Fatalf("jwks: %d %s", resp.StatusCode, body)
	}

	resp, _ = request(t, "GET", origin+"/loggedin", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/signin?redirectTo=%2Floggedin" {
		t.Fatalf("/loggedin signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = request(t, "GET", origin+"/signin", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "/demo/signin/ada") {
		t.Fatalf("/signin: %d %s", resp.StatusCode, body)
	}
	resp, _ = request(t, "GET", origin+"/demo/signin/ada", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Convex-Auth-Sign-In") != "" {
		t.Fatalf("demo sign-in: %d %v", resp.StatusCode, resp.Header)
	}
	sess := sessionCookie(t, resp)
	resp, body = request(t, "GET", origin+"/loggedin", withCookie(sess))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"user_ada"`) || !strings.Contains(body, `"iss":"http://localhost:8080"`) || !strings.Contains(body, `"aud":"convex"`) {
		t.Fatalf("/loggedin signed in: %d\n%s", resp.StatusCode, body)
	}
}
