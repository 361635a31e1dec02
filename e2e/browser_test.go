package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Where the browser test finds its tools.
const (
	chromiumBinEnv     = "CHROMIUM_BIN"
	defaultChromiumBin = "/usr/bin/chromium"
	browserDir         = "browser" // node package: signin.mjs, playwright-core
)

// needTool skips the test locally, and fails it in CI, when a tool is missing.
func needTool(t *testing.T, what, hint string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing; CI must run the browser test: %s", what, hint)
	}
	t.Skipf("%s is missing: %s", what, hint)
}

// browserTools finds what the browser tests run: Debian's chromium (or
// CHROMIUM_BIN), node, and e2e/browser's playwright-core. Each is skipped
// without, or fails under CI.
func browserTools(t *testing.T) (chromium, node string) {
	t.Helper()
	chromium = os.Getenv(chromiumBinEnv)
	if chromium == "" {
		chromium = defaultChromiumBin
	}
	_, err := os.Stat(chromium)
	needTool(t, "chromium", "apt-get install -y chromium, or set "+chromiumBinEnv, err == nil)
	node, err = exec.LookPath("node")
	needTool(t, "node", "install Node.js 20 or later", err == nil)
	_, err = os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core"))
	needTool(t, "playwright-core", "run npm ci in e2e/browser (make test does)", err == nil)
	return chromium, node
}

// TestBrowserSignIn runs headless Chromium (Debian's chromium, driven by
// playwright-core) against the built Caddy with the password provider:
// /loggedin → sign-in page → sign up → back on /loggedin seeing the user →
// sign out → /loggedin redirects again. Screenshots of the sign-in page
// land in e2e/browser/out/.
func TestBrowserSignIn(t *testing.T) {
	caddyBin(t) // skips or fails early without the built binary
	chromium, node := browserTools(t)

	upstream := httptest.NewServer(identityPage(t))
	t.Cleanup(upstream.Close)
	origin := browserGateway(t, upstream.URL, `
		protect /loggedin*
		provider password`)

	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	runBrowserScript(t, node, chromium, "signin.mjs", filepath.Join(outDir, "failure.png"), []string{origin, outDir})
	t.Logf("screenshots of the sign-in page: %s", filepath.Join(outDir, "signin-desktop.png"))
}

// browserGateway starts the built Caddy with one site on a free localhost
// port, in front of upstream: convex_auth with the site's origin as its
// issuer and the given subdirectives. It returns the origin.
func browserGateway(t *testing.T, upstream, subdirectives string, env ...string) string {
	t.Helper()
	port := freePort(t)
	origin := fmt.Sprintf("http://localhost:%d", port)
	startCaddy(t, fmt.Sprintf(`{
	admin off
	http_port %d
}
%s {
	convex_auth {
		issuer %s%s
	}
	reverse_proxy %s
}
`, port, origin, origin, subdirectives, strings.TrimPrefix(upstream, "http://")), t.TempDir(), origin+"/.well-known/jwks.json", env...)
	return origin
}

// runBrowserScript runs e2e/browser/<script> with args under node, with
// Chromium's path and env in its environment, and logs what it printed. A
// failing script fails the test, naming its failure screenshot.
func runBrowserScript(t *testing.T, node, chromium, script, failureShot string, args []string, env ...string) {
	t.Helper()
	path, _ := filepath.Abs(filepath.Join(browserDir, script))
	cmd := exec.Command(node, append([]string{path}, args...)...)
	cmd.Env = append(append(os.Environ(), chromiumBinEnv+"="+chromium), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("browser:\n%s", out)
	if err != nil {
		t.Fatalf("the browser flow failed: %v (see %s)", err, failureShot)
	}
}

// identityPage is the app behind the gateway: it shows who the injected
// token says is signed in, and a sign-out button.
func identityPage(t *testing.T) http.Handler {
	page := template.Must(template.New("").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>App</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}</style></head>
<body>
{{if .Sub}}<h1>Signed in</h1>
<p>Signed in as <strong id="who">{{.Email}}</strong></p>
<p>User ID (the token's sub): <code id="sub">{{.Sub}}</code></p>
<form id="signout" method="post" action="/auth/signout"><button type="submit">Sign out</button></form>
{{else}}<h1>Home</h1><p>Not signed in. <a href="/loggedin">Open /loggedin</a></p>{{end}}
</body></html>`))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var claims struct {
			Sub   string `json:"sub"`
			Email string `json:"email"`
		}
		injectedClaims(r, &claims)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, claims); err != nil {
			t.Errorf("identity page: %v", err)
		}
	})
}

// injectedClaims decodes the claims of the token the gateway injected
// into r into v, as an app that trusts the gateway does: no check of the
// signature. No token leaves v as it is.
func injectedClaims(r *http.Request, v any) {
	if parts := strings.Split(r.Header.Get("X-Convex-Token"), "."); len(parts) == 3 {
		if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(raw, v)
		}
	}
}
