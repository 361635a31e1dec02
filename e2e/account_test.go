package e2e

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestBrowserAccount runs headless Chromium against the built Caddy with
// passwords and guests (e2e/browser/account.mjs): sign up in one browser,
// sign in from a second, the account page lists both sessions, "Sign out"
// the second from it and that browser is signed out; a guest signs up and
// keeps the token's sub. Screenshots of the account page and of the
// sign-in page with its guest button land in e2e/browser/out/, and with
// UPDATE_DOC_SCREENSHOTS=1 in docs/images/ too.
func TestBrowserAccount(t *testing.T) {
	caddyBin(t)
	chromium, node := browserTools(t)
	upstream := httptest.NewServer(identityPage(t))
	t.Cleanup(upstream.Close)
	origin := browserGateway(t, upstream.URL, `
		protect /loggedin*
		provider password
		provider anonymous {
			guest_ttl 24h
		}`)

	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	runBrowserScript(t, node, chromium, "account.mjs", filepath.Join(outDir, "account-failure.png"), []string{origin, outDir})
	if os.Getenv("UPDATE_DOC_SCREENSHOTS") == "1" {
		copyDocScreenshots(t, outDir, map[string]string{"account-desktop.png": "account.png", "signin-guest.png": "signin-guest.png"})
	}
}
