package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// clientJSDir is the browser package; its test/browser/bundle.mjs bundles
// the page the Chromium test drives.
const clientJSDir = "../clients/js"

// TestBrowserGatewayClient runs headless Chromium against the built Caddy
// with a page that uses the browser package (clients/js): sign in through
// the package's signIn(), useGatewayAuth reporting the user and Convex's
// client fetching its token, a signOut() in a second tab noticed by the
// first, and a session ended by the site admin API noticed on the next
// focus. The timings it prints are figures, not assertions.
func TestBrowserGatewayClient(t *testing.T) {
	caddyBin(t)
	chromium, node := browserTools(t)
	_, err := os.Stat(filepath.Join(clientJSDir, "node_modules", "esbuild"))
	needTool(t, "clients/js's node_modules", "run npm ci in clients/js (make test does)", err == nil)

	bundle := filepath.Join(t.TempDir(), "app.js")
	if out, err := exec.Command(node, filepath.Join(clientJSDir, "test", "browser", "bundle.mjs"), bundle).CombinedOutput(); err != nil {
		t.Fatalf("bundling the test page: %v\n%s", err, out)
	}

	// Convex's client gets a URL where nothing listens: no backend here.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	convexURL := "http://" + closed.Addr().String()
	closed.Close()

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>App</title>
<script>window.CONVEX_URL = %q;</script><script type="module" src="/app.js"></script></head>
<body><div id="root"></div></body></html>`, convexURL)
		case "/app.js":
			w.Header().Set("Content-Type", "text/javascript")
			http.ServeFile(w, r, bundle)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(upstream.Close)

	origin := browserGateway(t, upstream.URL, `
		provider password
		admin_api {
			secret {env.CONVEX_AUTH_ADMIN_SECRET}
		}`, "CONVEX_AUTH_ADMIN_SECRET="+adminSecret)

	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	runBrowserScript(t, node, chromium, "gatewayclient.mjs", filepath.Join(outDir, "failure.png"), []string{origin, outDir},
		"CONVEX_AUTH_ADMIN_SECRET="+adminSecret)
}
