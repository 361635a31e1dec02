package e2e

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestBrowserPasskeys runs e2e/browser/passkey.mjs against the built Caddy
// on http://localhost (an IP is no valid RP ID): passkeys added on the
// account page and used to sign in alone, in headless Chromium with CDP's
// virtual authenticators; a UV-less assertion refused under
// user_verification required; a synced passkey's swk; a removed passkey
// refused; the pages without passkeys running no script.
// UPDATE_DOC_SCREENSHOTS=1 writes its screenshots into docs/images/.
func TestBrowserPasskeys(t *testing.T) {
	caddyBin(t)
	chromium, node := browserTools(t)
	upstream := httptest.NewServer(identityPage(t))
	t.Cleanup(upstream.Close)
	origin := browserGateway(t, upstream.URL, `
		protect /loggedin*
		provider password
		provider passkey {
			user_verification required
		}`)
	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	var env []string
	if os.Getenv("UPDATE_DOC_SCREENSHOTS") != "" {
		docs, _ := filepath.Abs(filepath.Join("..", "docs", "images"))
		env = append(env, "UPDATE_DOC_SCREENSHOTS="+docs)
	}
	runBrowserScript(t, node, chromium, "passkey.mjs", filepath.Join(outDir, "passkey-failure.png"), []string{origin, outDir}, env...)
}
