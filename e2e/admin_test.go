package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

const adminSecret = "e2e-admin-secret-0123456789abcdef0123456789"

// adminGateways are two gateways on one Redis, each with Caddy's admin
// endpoint on a loopback port and the site admin API on.
type adminGateways struct {
	urls, admin []string
	procs       []*caddyProcess
}

func startAdminGateways(t *testing.T) *adminGateways {
	redis := redistest.StartServer(t)
	storage := t.TempDir()
	upstreamPort := freePort(t)
	g := &adminGateways{}
	ports := []int{freePort(t), freePort(t)}
	for _, p := range ports {
		g.urls = append(g.urls, fmt.Sprintf("http://127.0.0.1:%d", p))
		g.admin = append(g.admin, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	}
	for i := range 2 {
		c := fmt.Sprintf(`{
	admin %s
	storage file_system %s
}
http://127.0.0.1:%d {
	convex_auth {
		issuer https://app.example.com
		redis %s
		protect /loggedin*
		trust_upstream_sign_in
		provider password
		admin_api {
			secret {env.CONVEX_AUTH_ADMIN_SECRET}
		}
	}
	reverse_proxy 127.0.0.1:%d
}
`, g.admin[i], storage, ports[i], redis.URL(), upstreamPort)
		if i == 0 {
			c += signInUpstreamByQuery(upstreamPort)
		}
		g.procs = append(g.procs, startCaddy(t, c, t.TempDir(), g.urls[i]+"/.well-known/jwks.json", "CONVEX_AUTH_ADMIN_SECRET="+adminSecret))
	}
	return g
}

// passwordSignIn signs up (or in) on the gateway at base and returns the
// session cookie.
func passwordSignIn(t *testing.T, base, intent string) *http.Cookie {
	t.Helper()
	resp, body := postForm(t, base+"/auth/signin/password", url.Values{
		"intent": {intent}, "email": {"ban-me@example.com"}, "password": {"correct horse battery"}, "redirectTo": {"/loggedin"},
	}, map[string]string{"Origin": base})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password %s on %s: %d %s", intent, base, resp.StatusCode, body)
	}
	return sessionCookie(t, resp)
}

// whoAmI returns the user and session IDs of the cookie's session.
func whoAmI(t *testing.T, base string, c *http.Cookie) (userID, sessionID string) {
	t.Helper()
	resp, body := request(t, "GET", base+"/auth/session", withCookie(c))
	var s struct {
		User    struct{ ID string }
		Session struct{ ID string }
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("/auth/session: %d %s", resp.StatusCode, body)
	}
	return s.User.ID, s.Session.ID
}

// adminCall calls the operator API on a Caddy admin endpoint.
func adminCall(t *testing.T, addr, method, path string) (int, map[string]any) {
	t.Helper()
	resp, body := request(t, method, "http://"+addr+"/convex-auth"+path, nil)
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("%s %s: not JSON: %d %s", method, path, resp.StatusCode, body)
	}
	return resp.StatusCode, out
}

// refusedEventually polls base/loggedin with c until it is refused (401),
// for at most eventually, and logs how long that took: the promise (within
// a second) is measured by BenchmarkRevocationReachesOtherInstance, since a
// starved CPU delays it here.
func refusedEventually(t *testing.T, base string, c *http.Cookie, what string) {
	t.Helper()
	start := time.Now()
	for {
		resp, _ := request(t, "GET", base+"/loggedin", withCookie(c))
		if resp.StatusCode == http.StatusUnauthorized {
			t.Logf("%s refused after %v", what, time.Since(start))
			return
		}
		if time.Since(start) > eventually {
			t.Fatalf("%s still accepted after %v: %d", what, time.Since(start), resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func accepted(t *testing.T, base string, c *http.Cookie) bool {
	t.Helper()
	resp, _ := request(t, "GET", base+"/loggedin", withCookie(c))
	return resp.StatusCode == http.StatusOK
}

// TestAdminAPIAcrossInstances: the operator API lists, revokes and bans;
// a revocation or a ban made through one instance is in force on the other
// (within a second: BenchmarkRevocationReachesOtherInstance); a banned user cannot sign in (password or upstream)
// until unbanned; the CLI and the site admin API work against the built
// binary.
func TestAdminAPIAcrossInstances(t *testing.T) {
	g := startAdminGateways(t)
	a, b := g.urls[0], g.urls[1]

	sa1 := passwordSignIn(t, a, "signup")
	userID, _ := whoAmI(t, a, sa1)
	sb1 := passwordSignIn(t, b, "signin")
	_, sidB1 := whoAmI(t, b, sb1)
	sa2 := passwordSignIn(t, a, "signin")

	code, body := adminCall(t, g.admin[0], "GET", "/users/"+userID+"/sessions")
	if list, _ := body["sessions"].([]any); code != 200 || len(list) != 3 {
		t.Fatalf("list sessions: %d %v", code, body)
	}
	code, body = adminCall(t, g.admin[1], "GET", "/users/"+userID)
	if user, _ := body["user"].(map[string]any); code != 200 || user["banned"] != false || len(body["accounts"].([]any)) != 1 {
		t.Fatalf("get user: %d %v", code, body)
	}
	if code, body := adminCall(t, g.admin[0], "GET", "/users/nobody-at-all"); code != 404 || body["error"] != "user_not_found" {
		t.Fatalf("unknown user: %d %v", code, body)
	}

	// Revoke B's session through A's admin endpoint; B has it cached.
	if !accepted(t, b, sb1) {
		t.Fatal("B does not accept its own session")
	}
	if code, body := adminCall(t, g.admin[0], "DELETE", "/users/"+userID+"/sessions/"+sidB1); code != 200 || body["ended"] != float64(1) {
		t.Fatalf("revoke one: %d %v", code, body)
	}
	refusedEventually(t, b, sb1, "a session revoked through A's admin endpoint, on B")
	if !accepted(t, a, sa1) || !accepted(t, a, sa2) {
		t.Fatal("revoking one session ended others")
	}

	// Ban through B's admin endpoint; A has both sessions cached.
	code, body = adminCall(t, g.admin[1], "POST", "/users/"+userID+"/ban")
	if code != 200 || body["ended"] != float64(2) {
		t.Fatalf("ban: %d %v", code, body)
	}
	refusedEventually(t, a, sa1, "a banned user's session, on the other instance")
	refusedEventually(t, a, sa2, "a banned user's second session, on the other instance")
	for _, base := range []string{a, b} {
		resp, page := postForm(t, base+"/auth/signin/password", url.Values{
			"intent": {"signin"}, "email": {"ban-me@example.com"}, "password": {"correct horse battery"},
		}, map[string]string{"Origin": base})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "banned") {
			t.Fatalf("password sign-in of a banned user on %s: %d %s", base, resp.StatusCode, page)
		}
		for _, c := range resp.Cookies() {
			if strings.Contains(c.Name, "convex_session") && c.Value != "" {
				t.Fatalf("a banned user got a session cookie on %s", base)
			}
		}
	}
	resp, page := request(t, "POST", a+"/signin?user="+url.QueryEscape(userID), map[string]string{"Origin": a, "Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "banned") {
		t.Fatalf("upstream sign-in of a banned user: %d %s", resp.StatusCode, page)
	}

	// The CLI talks to the admin endpoint as caddy reload does.
	env := isolatedEnv(t.TempDir())
	out, errOut, ok := runCaddyCLI(t, env, "convex-auth", "users", "get", "--address", g.admin[0], "--", userID)
	if !ok || !strings.Contains(out, `"banned": true`) {
		t.Fatalf("users get: %v\n%s\n%s", ok, out, errOut)
	}
	out, errOut, ok = runCaddyCLI(t, env, "convex-auth", "users", "unban", "--address", g.admin[0], "--", userID)
	if !ok || !strings.Contains(out, `"banned": false`) {
		t.Fatalf("users unban: %v\n%s\n%s", ok, out, errOut)
	}
	sb2 := passwordSignIn(t, b, "signin")
	if !accepted(t, a, sb2) {
		t.Fatal("an unbanned user's new session is not accepted")
	}
	out, errOut, ok = runCaddyCLI(t, env, "convex-auth", "sessions", "list", "--address", g.admin[1], "--", userID)
	if !ok || strings.Count(out, `"id"`) != 1 {
		t.Fatalf("sessions list: %v\n%s\n%s", ok, out, errOut)
	}
	if _, errOut, ok := runCaddyCLI(t, env, "convex-auth", "users", "get", "nobody-at-all", "--address", g.admin[1]); ok || !strings.Contains(errOut, "user_not_found") {
		t.Fatalf("users get of an unknown user succeeded or did not say why:\n%s", errOut)
	}
	out, errOut, ok = runCaddyCLI(t, env, "convex-auth", "sessions", "revoke", "--address", g.admin[1], "--", userID)
	if !ok || !strings.Contains(out, `"ended": 1`) {
		t.Fatalf("sessions revoke: %v\n%s\n%s", ok, out, errOut)
	}
	refusedEventually(t, a, sb2, "a session revoked with the CLI")

	// The site admin API: the secret, nothing else, lets a server in.
	sa3 := passwordSignIn(t, a, "signin")
	path := b + "/auth/admin/users/" + userID + "/sessions"
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"no secret", nil, 401},
		{"wrong secret", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", len(adminSecret))}, 401},
		{"the user's own cookie", withCookie(sa3), 401},
		{"cross-site with the secret", map[string]string{"Authorization": "Bearer " + adminSecret, "Origin": "https://evil.example"}, 403},
		{"preflight", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"}, 403},
	} {
		method := "DELETE"
		if tc.name == "preflight" {
			method = "OPTIONS"
		}
		resp, body := request(t, method, path, tc.hdr)
		if resp.StatusCode != tc.code || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("site API, %s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
	if !accepted(t, a, sa3) {
		t.Fatal("a refused site API call ended the session")
	}
	resp, sbody := request(t, "DELETE", path, map[string]string{"Authorization": "Bearer " + adminSecret})
	if resp.StatusCode != 200 || !strings.Contains(sbody, `"ended":1`) {
		t.Fatalf("site API with the secret: %d %s", resp.StatusCode, sbody)
	}
	refusedEventually(t, a, sa3, "a session ended through B's site admin API, on A")

	// Each call is audited with its operation and user; the secret never.
	logB := g.procs[1].Log()
	if strings.Contains(logB+g.procs[0].Log(), adminSecret) {
		t.Fatal("the admin secret is in a log")
	}
	audit := regexp.MustCompile(`"logger":"http.handlers.convex_auth.admin_api","msg":"admin api call","op":"end_sessions","status":200,"user_id":"` + regexp.QuoteMeta(userID) + `"`)
	operator := regexp.MustCompile(`"logger":"admin.api.convex_auth","msg":"admin api call","op":"ban","status":200,"user_id":"` + regexp.QuoteMeta(userID) + `"`)
	if !operator.MatchString(logB) {
		t.Fatalf("no audit line for the operator API's ban in B's log:\n%s", logB)
	}
	if !audit.MatchString(logB) {
		t.Fatalf("no audit line for the site API call in B's log:\n%s", logB)
	}
	if !strings.Contains(logB, `"msg":"admin api call refused","op":"end_sessions","status":401,"user_id":"`+userID+`"`) {
		t.Fatal("refused site API calls are not audited")
	}
}

// TestAdminRealmsFollowReload: the operator API sees the realms of the
// config running now, through `caddy reload`s that keep, add and drop them.
func TestAdminRealmsFollowReload(t *testing.T) {
	// A port of its own for each site: port+1 may be any connection's
	// (a loaded run found it taken).
	ports, adminAddr := []int{freePort(t), freePort(t)}, fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dataDir := t.TempDir()
	config := func(realms ...string) string {
		c := fmt.Sprintf("{\n\tadmin %s\n}\n", adminAddr)
		for i, r := range realms {
			c += fmt.Sprintf("http://127.0.0.1:%d {\n\tconvex_auth {\n\t\tissuer https://app%d.example.com\n\t\trealm %s\n\t}\n\trespond \"ok\"\n}\n", ports[i], i, r)
		}
		return c
	}
	startCaddy(t, config("realm-one"), dataDir, fmt.Sprintf("http://127.0.0.1:%d/.well-known/jwks.json", ports[0]))
	realmError := func(query string) string {
		t.Helper()
		_, body := adminCall(t, adminAddr, "GET", "/users/someone"+query)
		e, _ := body["error"].(string)
		return e
	}
	if e := realmError(""); e != "user_not_found" {
		t.Fatalf("one realm, none named: %q", e)
	}
	reload := func(c string) {
		t.Helper()
		file := t.TempDir() + "/Caddyfile"
		if err := os.WriteFile(file, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, errOut, ok := runCaddyCLI(t, isolatedEnv(dataDir), "reload", "--config", file, "--adapter", "caddyfile", "--address", adminAddr); !ok {
			t.Fatalf("caddy reload: %s", errOut)
		}
	}
	reload(config("realm-one", "realm-two"))
	if e := realmError(""); e != "realm_required" {
		t.Fatalf("two realms, none named: %q", e)
	}
	for _, q := range []string{"?realm=realm-one", "?realm=realm-two", "?realm=https://app1.example.com"} {
		if e := realmError(q); e != "user_not_found" {
			t.Fatalf("%s after the reload: %q", q, e)
		}
	}
	reload(config("realm-two"))
	if e := realmError("?realm=realm-one"); e != "unknown_realm" {
		t.Fatalf("a dropped realm after the reload: %q", e)
	}
	if e := realmError(""); e != "user_not_found" {
		t.Fatalf("the one realm left: %q", e)
	}
}
