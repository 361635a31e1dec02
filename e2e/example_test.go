package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleCaddyfile runs Caddyfile.example as the README's first command
// does: discovery and JWKS at the issuer, the protected page redirects to
// the gateway's sign-in page, a password sign-up (and the demo app's own
// sign-in) leads to a page that shows the token's claims.
func TestExampleCaddyfile(t *testing.T) {
	bin := caddyBin(t)
	example, err := filepath.Abs("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	demoRoot, _ := filepath.Abs("../demo")
	// Free ports through the example's environment placeholders, so that a
	// running `make run` (8080, 8081, 2019) or another test run is no bother.
	gatewayPort := freePort(t)
	origin := fmt.Sprintf("http://localhost:%d", gatewayPort)
	p := startCaddyFile(t, bin, example, t.TempDir(), origin+"/.well-known/openid-configuration",
		"CONVEX_AUTH_DEMO_ROOT="+demoRoot,
		fmt.Sprintf("GATEWAY_PORT=%d", gatewayPort),
		fmt.Sprintf("DEMO_APP_PORT=%d", freePort(t)),
		fmt.Sprintf("CADDY_ADMIN=127.0.0.1:%d", freePort(t)))
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
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/auth/signin?redirectTo=%2Floggedin" {
		t.Fatalf("/loggedin signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The gateway's own sign-in page, with the password provider.
	resp, body = request(t, "GET", origin+"/auth/signin?redirectTo=%2Floggedin", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/auth/signin/password"`) || !strings.Contains(body, "Create an account") {
		t.Fatalf("/auth/signin: %d %s", resp.StatusCode, body)
	}
	resp, _ = postForm(t, origin+"/auth/signin/password", url.Values{
		"intent": {"signup"}, "email": {"Ada@Example.com"}, "password": {"correct horse battery"}, "redirectTo": {"/loggedin"},
	}, map[string]string{"Origin": origin})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/loggedin" {
		t.Fatalf("password sign-up: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	sess := sessionCookie(t, resp)
	resp, body = request(t, "GET", origin+"/loggedin", withCookie(sess))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"email":"ada@example.com"`) || !strings.Contains(body, `"iss":"`+origin+`"`) || !strings.Contains(body, `"aud":"convex"`) {
		t.Fatalf("/loggedin after the password sign-up: %d\n%s", resp.StatusCode, body)
	}
	// The page says the token came in the header only, and shows the
	// convex_jwt cookie the app got: none, even when the browser sent one.
	resp, body = request(t, "GET", origin+"/loggedin", map[string]string{"Cookie": sess.Name + "=" + sess.Value + "; convex_jwt=forged"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<code id="token-cookie">none</code>`) || !strings.Contains(body, "header only") {
		t.Fatalf("/loggedin with a client convex_jwt cookie: %d\n%s", resp.StatusCode, body)
	}

	// The demo app's own sign-in (trust_upstream_sign_in) still works.
	resp, body = request(t, "GET", origin+"/signin", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "/demo/signin/ada") {
		t.Fatalf("/signin: %d %s", resp.StatusCode, body)
	}
	resp, _ = request(t, "POST", origin+"/demo/signin/ada", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Convex-Auth-Sign-In") != "" {
		t.Fatalf("demo sign-in: %d %v", resp.StatusCode, resp.Header)
	}
	sess = sessionCookie(t, resp)
	resp, body = request(t, "GET", origin+"/loggedin", withCookie(sess))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"user_ada"`) || !strings.Contains(body, `"iss":"`+origin+`"`) || !strings.Contains(body, `"aud":"convex"`) {
		t.Fatalf("/loggedin signed in: %d\n%s", resp.StatusCode, body)
	}
}

// postForm posts a form as a page of the site would.
func postForm(t *testing.T, u string, form url.Values, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return send(t, req, headers)
}
