package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/smtptest"
)

// TestBrowserMailLifecycle runs headless Chromium against the built Caddy
// with the password provider and mail to a real SMTP sink: sign up, verify
// the email by the mailed link (email_verified true in /auth/token and in
// the upstream's token), a second browser signs in, forgot password →
// reset, the second browser is signed out, the old password fails and the
// new one works; the notices of the verification, the reset and the new
// browsers are sent too. Screenshots of the sign-in page (with "Forgot password?")
// and of the reset page land in e2e/browser/out/, or in docs/images/ with
// UPDATE_DOC_SCREENSHOTS=1.
func TestBrowserMailLifecycle(t *testing.T) {
	caddyBin(t)
	chromium, node := browserTools(t)

	sink := smtptest.Start(t, nil, "", "")
	smtpHost, smtpPort, _ := net.SplitHostPort(sink.Addr)
	mailbox := httptest.NewServer(mailboxHandler(t, sink))
	t.Cleanup(mailbox.Close)
	upstream := httptest.NewServer(verifiedPage(t))
	t.Cleanup(upstream.Close)

	origin := browserGateway(t, upstream.URL, fmt.Sprintf(`
		protect /loggedin*
		email {
			smtp_host %s
			smtp_port %s
			smtp_tls none
			from "Example <login@example.com>"
			site_name "Example App"
		}
		provider password`, smtpHost, smtpPort))

	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	if os.Getenv("UPDATE_DOC_SCREENSHOTS") == "1" {
		outDir, _ = filepath.Abs(filepath.Join("..", "docs", "images"))
	}
	runBrowserScript(t, node, chromium, "mail.mjs", filepath.Join(outDir, "mail-failure.png"), []string{origin, mailbox.URL, outDir})
	// The two links, and the notices: the address verified, the second
	// browser's first sign-in, the reset, and that browser's sign-in again
	// (the reset forgot it).
	kinds := map[string]int{}
	for _, m := range sink.Since(0) {
		text, _ := textPart(m.Data)
		for _, k := range []string{"/auth/verify?token=", "/auth/password/reset?token=", "was verified", "had not seen before", "was reset"} {
			if strings.Contains(text, k) {
				kinds[k]++
			}
		}
	}
	want := map[string]int{"/auth/verify?token=": 1, "/auth/password/reset?token=": 1, "was verified": 1, "had not seen before": 2, "was reset": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) || sink.Count() != 6 {
		t.Fatalf("%d mails %v; want 6: %v", sink.Count(), kinds, want)
	}
}

// mailboxHandler answers GET ?after=n&has=text with the first mail after
// the n-th whose text part holds text, waiting up to eventually for it:
// {"count": its place, "text": <its text part>}.
func mailboxHandler(t *testing.T, sink *smtptest.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		has := r.URL.Query().Get("has")
		deadline := time.Now().Add(eventually)
		for {
			for i, m := range sink.Since(after) {
				text, err := textPart(m.Data)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				if strings.Contains(text, has) {
					w.Header().Set("Content-Type", "application/json")
					_ = json.NewEncoder(w).Encode(map[string]any{"count": after + i + 1, "text": text})
					return
				}
			}
			if time.Now().After(deadline) {
				http.Error(w, "no mail", http.StatusGatewayTimeout)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// textPart is the decoded text/plain part of a multipart/alternative mail.
func textPart(data []byte) (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		return "", fmt.Errorf("the mail is %q, not multipart/alternative", mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return "", fmt.Errorf("no text part: %w", err)
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct == "text/plain" {
			b, err := io.ReadAll(p)
			return string(b), err
		}
	}
}

// verifiedPage is the app: it shows the injected token's sub, email and
// email_verified.
func verifiedPage(t *testing.T) http.Handler {
	page := template.Must(template.New("").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>App</title></head><body>
{{if .Sub}}<p>Signed in as <strong id="who">{{.Email}}</strong>, user <code id="sub">{{.Sub}}</code>,
email verified: <code id="verified">{{.EmailVerified}}</code></p>{{else}}<p>Not signed in.</p>{{end}}
</body></html>`))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var claims struct {
			Sub           string `json:"sub"`
			Email         string `json:"email"`
			EmailVerified bool   `json:"email_verified"`
		}
		injectedClaims(r, &claims)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, claims); err != nil {
			t.Errorf("app page: %v", err)
		}
	})
}
