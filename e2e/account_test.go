package e2e

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowserAccount runs headless Chromium against the built Caddy with
// passwords and guests (e2e/browser/account.mjs): sign up in one browser,
// sign in from a second, the account page lists both sessions, "Sign out"
// the second from it and that browser is signed out; a guest signs up and
// keeps the token's sub. Screenshots of the account page and of the
// sign-in page with its guest button land in e2e/browser/out/ (the ones
// in docs/images/ come from here).
func TestBrowserAccount(t *testing.T) {
	caddyBin(t)
	chromium, node := browserTools(t)
	script, _ := filepath.Abs(filepath.Join(browserDir, "account.mjs"))

	upstream := httptest.NewServer(identityPage(t))
	t.Cleanup(upstream.Close)
	port := freePort(t)
	origin := fmt.Sprintf("http://localhost:%d", port)
	startCaddy(t, fmt.Sprintf(`{
	admin off
	http_port %d
}
%s {
	convex_auth {
		issuer %s
		protect /loggedin*
		provider password
		provider anonymous {
			guest_ttl 24h
		}
	}
	reverse_proxy %s
}
`, port, origin, origin, strings.TrimPrefix(upstream.URL, "http://")), t.TempDir(), origin+"/.well-known/jwks.json")

	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	cmd := exec.Command(node, script, origin, outDir)
	cmd.Env = append(os.Environ(), chromiumBinEnv+"="+chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("browser:\n%s", out)
	if err != nil {
		t.Fatalf("the browser flow failed: %v (see %s)", err, filepath.Join(outDir, "account-failure.png"))
	}
}
