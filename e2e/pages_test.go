package e2e

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBrowserPages runs headless Chromium against the built Caddy through
// the gateway's pages (e2e/browser/pages.mjs): a wrong password comes back
// to the sign-in page and a reload posts nothing (the browser's posts
// counted, and the gateway's failed sign-ins: the page's and a script's,
// no more); a script's post still gets 401; the sign-in, account and delete pages
// never make the browser ask the app for /favicon.ico (while a page of the
// app without an icon does); the account page leads back to the app; a
// new name reaches the next token of both of the user's sessions and the
// app's user.updated; "Delete account" only asks, and the second page
// deletes. With UPDATE_DOC_SCREENSHOTS=1 the screenshots of the error and
// the delete page go to docs/images/.
func TestBrowserPages(t *testing.T) {
	caddyBin(t)
	chromium, node := browserTools(t)
	rc := newEventReceiver(t)
	var favicons atomic.Int64
	upstream := httptest.NewServer(pagesApp(t, &favicons))
	t.Cleanup(upstream.Close)

	port, adminPort := freePort(t), freePort(t)
	origin := fmt.Sprintf("http://localhost:%d", port)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	startCaddy(t, fmt.Sprintf(`{
	admin %s
	http_port %d
	metrics
}
%s {
	convex_auth {
		issuer %s
		protect /loggedin*
		provider password
		after_sign_in /loggedin
		events {
			url %s
			secret {env.TEST_EVENTS_SECRET}
			initial_backoff 200ms
		}
	}
	reverse_proxy %s
}
`, admin, port, origin, origin, rc.srv.URL, strings.TrimPrefix(upstream.URL, "http://")), t.TempDir(), origin+"/.well-known/jwks.json",
		"TEST_EVENTS_SECRET="+e2eEventsSecret)

	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	runBrowserScript(t, node, chromium, "pages.mjs", filepath.Join(outDir, "pages-failure.png"), []string{origin, upstream.URL, outDir})

	// The gateway saw two failed password sign-ins, the page's and the
	// script's: the reload posted none.
	_, metrics := request(t, "GET", "http://"+admin+"/metrics", nil)
	for series, want := range map[string]string{
		`caddy_convex_auth_sign_ins_total{provider="password",result="failure"}`: "2",
		`caddy_convex_auth_sign_ins_total{provider="password",result="success"}`: "2",
	} {
		if !strings.Contains(metrics, series+" "+want+"\n") {
			t.Errorf("the gateway counted no %s of %s:\n%s", want, series, grepLines(metrics, "sign_ins_total"))
		}
	}
	// The app heard of the new name.
	deadline := time.Now().Add(30 * time.Second)
	for !rc.has(func(ev gotEvent) bool {
		var body struct {
			Data struct{ User struct{ Name string } } `json:"data"`
		}
		_ = json.Unmarshal([]byte(ev.Body), &body)
		return ev.Type == "user.updated" && body.Data.User.Name == "Ada King, Gräfin Lovelace"
	}) {
		if time.Now().After(deadline) {
			rc.mu.Lock()
			t.Fatalf("no user.updated with the new name among %+v", rc.applied)
			rc.mu.Unlock()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if os.Getenv("UPDATE_DOC_SCREENSHOTS") == "1" {
		copyDocScreenshots(t, outDir, map[string]string{"signin-error.png": "signin-error.png", "account-delete.png": "account-delete.png"})
	}
}

// pagesApp is the app behind the gateway: its pages show the injected
// token's sub and name and link an icon, but /plain links none;
// /favicon.ico is counted (and missing), and /favicons says the count.
func pagesApp(t *testing.T, favicons *atomic.Int64) http.Handler {
	page := template.Must(template.New("").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>App</title>
{{if not .Plain}}<link rel="icon" href="data:,">{{end}}</head><body>
{{if .Sub}}<p>Signed in as <strong id="name">{{.Name}}</strong> (<code id="sub">{{.Sub}}</code>)</p>{{else}}<p id="plain">Not signed in.</p>{{end}}
</body></html>`))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/favicon.ico":
			favicons.Add(1)
			http.NotFound(w, r)
			return
		case "/favicons":
			_ = json.NewEncoder(w).Encode(map[string]int64{"count": favicons.Load()})
			return
		}
		var claims struct {
			Sub, Name string
			Plain     bool `json:"-"`
		}
		claims.Plain = r.URL.Path == "/plain"
		injectedClaims(r, &claims)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, claims); err != nil {
			t.Errorf("app page: %v", err)
		}
	})
}

// has reports whether an applied event matches.
func (rc *eventReceiver) has(match func(gotEvent) bool) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, ev := range rc.applied {
		if match(ev) {
			return true
		}
	}
	return false
}

// copyDocScreenshots copies screenshots from dir to docs/images, each
// under the name the docs give it.
func copyDocScreenshots(t *testing.T, dir string, docNames map[string]string) {
	t.Helper()
	for shot, doc := range docNames {
		b, err := os.ReadFile(filepath.Join(dir, shot))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "images", doc), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
