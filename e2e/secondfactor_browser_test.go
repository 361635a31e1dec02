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
	runBrowserScript(t, node, chromium, "passkey.mjs", filepath.Join(outDir, "passkey-failure.png"), []string{origin, outDir}, docScreenshots()...)
}

// TestBrowserTOTP runs e2e/browser/totp.mjs against the built Caddy: an
// authenticator app set up on the account page with RFC 6238 codes
// computed in Node, then the challenge after a password sign-in (no
// session before the code, a wrong and a replayed code refused, amr pwd
// otp mfa, a backup code once).
func TestBrowserTOTP(t *testing.T) {
	caddyBin(t)
	chromium, node := browserTools(t)
	upstream := httptest.NewServer(identityPage(t))
	t.Cleanup(upstream.Close)
	origin := browserGateway(t, upstream.URL, `
		protect /loggedin*
		provider password`)
	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	runBrowserScript(t, node, chromium, "totp.mjs", filepath.Join(outDir, "totp-failure.png"), []string{origin, outDir}, docScreenshots()...)
}

// docScreenshots passes UPDATE_DOC_SCREENSHOTS=1 on to a browser script
// as the docs' image directory.
func docScreenshots() []string {
	if os.Getenv("UPDATE_DOC_SCREENSHOTS") == "" {
		return nil
	}
	docs, _ := filepath.Abs(filepath.Join("..", "docs", "images"))
	return []string{"UPDATE_DOC_SCREENSHOTS=" + docs}
}
