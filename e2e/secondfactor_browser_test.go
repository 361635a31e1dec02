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
	runSecondFactorBrowser(t, "passkey", `
		provider passkey {
			user_verification required
		}`)
}

// TestBrowserTOTP runs e2e/browser/totp.mjs against the built Caddy: an
// authenticator app set up on the account page with RFC 6238 codes
// computed in Node, then the challenge after a password sign-in (no
// session before the code, a wrong and a replayed code refused, amr pwd
// otp mfa, "remember this browser" skipping the challenge in that browser
// only, a backup code once).
func TestBrowserTOTP(t *testing.T) {
	runSecondFactorBrowser(t, "totp", `
		second_factor {
			remember_device 24h
		}`)
}

// runSecondFactorBrowser runs e2e/browser/<name>.mjs against the built
// Caddy on http://localhost in front of the identity page, with password
// sign-in, /loggedin protected and the extra subdirectives.
// UPDATE_DOC_SCREENSHOTS=1 has the script write the docs' screenshots.
func runSecondFactorBrowser(t *testing.T, name, subdirectives string) {
	caddyBin(t)
	chromium, node := browserTools(t)
	upstream := httptest.NewServer(identityPage(t))
	t.Cleanup(upstream.Close)
	origin := browserGateway(t, upstream.URL, `
		protect /loggedin*
		provider password`+subdirectives)
	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	var env []string
	if os.Getenv("UPDATE_DOC_SCREENSHOTS") != "" {
		docs, _ := filepath.Abs(filepath.Join("..", "docs", "images"))
		env = append(env, "UPDATE_DOC_SCREENSHOTS="+docs)
	}
	runBrowserScript(t, node, chromium, name+".mjs", filepath.Join(outDir, name+"-failure.png"), []string{origin, outDir}, env...)
}
