package signintest

import (
	"bytes"
	"crypto/tls"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	netmail "net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/smtptest"
	"github.com/convex-auth/caddy-convex-auth/mail"
)

// StartSMTP runs an SMTP receiver that keeps the mail the site sends.
func StartSMTP(t *testing.T, tlsConfig *tls.Config, username, password string) *smtptest.Server {
	return smtptest.Start(t, tlsConfig, username, password)
}

// Mailer sends to rcv without TLS, from Example <login@example.com>.
func Mailer(rcv *smtptest.Server) *mail.SMTPMailer {
	host, port, _ := net.SplitHostPort(rcv.Addr)
	n, _ := strconv.Atoi(port)
	return &mail.SMTPMailer{Host: host, Port: n, Security: mail.SMTPNone, From: "Example <login@example.com>"}
}

var (
	signInLinkPattern = regexp.MustCompile(`https?://\S+/auth/callback/email\?token=[A-Za-z0-9_-]+`)
	flowLinkPattern   = regexp.MustCompile(`https?://\S+/auth/(?:verify|password/reset|callback/email)\?token=[A-Za-z0-9_-]+`)
	codePattern       = regexp.MustCompile(`(?m)^(\d{8})\r?$`)
	hiddenTokenInput  = regexp.MustCompile(`name="token" value="([A-Za-z0-9_-]+)"`)
)

// MailLink reads the sign-in link out of the last mail that holds one: a
// notice sent in the background (a new browser's) may arrive after it.
func MailLink(t *testing.T, r *smtptest.Server) string {
	t.Helper()
	return lastMailMatch(t, r, "sign-in link", func(text string) string { return signInLinkPattern.FindString(text) })
}

// MailCode reads the code out of the last mail that holds one.
func MailCode(t *testing.T, r *smtptest.Server) string {
	t.Helper()
	return lastMailMatch(t, r, "8-digit code", func(text string) string {
		if m := codePattern.FindStringSubmatch(text); m != nil {
			return m[1]
		}
		return ""
	})
}

// lastMailMatch is what find reads out of the newest mail that has it.
func lastMailMatch(t *testing.T, r *smtptest.Server, what string, find func(text string) string) string {
	t.Helper()
	mails := r.Since(0)
	if len(mails) == 0 {
		t.Fatal("no mail arrived")
	}
	for i := len(mails) - 1; i >= 0; i-- {
		if v := find(MailText(t, mails[i].Data)); v != "" {
			return v
		}
	}
	t.Fatalf("no %s in any mail; the last:\n%s", what, MailText(t, mails[len(mails)-1].Data))
	return ""
}

// WrongCode is a code that is not code.
func WrongCode(code string) string {
	if code == "00000000" {
		return "11111111"
	}
	return "00000000"
}

// MailText is the decoded text part of a mail.
func MailText(t *testing.T, data []byte) string {
	t.Helper()
	text, _ := MailParts(t, data)
	return text
}

// MailParts decodes a multipart/alternative mail into its text and HTML.
func MailParts(t *testing.T, data []byte) (text, html string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the mail is not RFC 5322: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("the mail is %q, not multipart/alternative: %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // NextPart decodes quoted-printable
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	if text == "" || html == "" {
		t.Fatalf("the mail lacks a text or an HTML part")
	}
	return text, html
}

// WaitMails waits until n mails have arrived (some are sent after the
// answer) and returns the last one's text.
func WaitMails(t *testing.T, rcv *smtptest.Server, n int) string {
	t.Helper()
	// Generous: a starved CPU delays mail, and a passing test does not
	// wait for the bound.
	deadline := time.Now().Add(time.Minute)
	for rcv.Count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d mails arrived; want %d", rcv.Count(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return MailText(t, rcv.Last(t).Data)
}

// WaitMailTo waits for a mail to address, among those after the first
// `after`, whose text holds want, and returns its text: for mails whose
// order is not fixed (notices are sent after the answer).
func WaitMailTo(t *testing.T, rcv *smtptest.Server, after int, address, want string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, m := range rcv.Since(after) {
			if text := MailText(t, m.Data); len(m.To) == 1 && m.To[0] == address && strings.Contains(text, want) {
				return text
			}
		}
	}
	t.Fatalf("no mail to %s saying %q", address, want)
	return ""
}

// LinkAndCode reads a mail's link (if any) and code.
func LinkAndCode(t *testing.T, text string) (link, code string) {
	t.Helper()
	m := codePattern.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no code in the mail:\n%s", text)
	}
	return flowLinkPattern.FindString(text), m[1]
}

// HiddenToken reads the token field of a page.
func HiddenToken(t *testing.T, page string) string {
	t.Helper()
	m := hiddenTokenInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token field in the page:\n%s", page)
	}
	return m[1]
}

// TokenOf splits a mailed link into the page it opens and its token.
func TokenOf(t *testing.T, link string) (action, token string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host + u.Path, u.Query().Get("token")
}

// RequestLink asks the site at origin for an email sign-in link.
func RequestLink(b *Browser, origin, email, redirectTo string) (*http.Response, string) {
	b.T.Helper()
	form := url.Values{"email": {email}}
	if redirectTo != "" {
		form.Set("redirectTo", redirectTo)
	}
	return b.Post(origin+"/auth/signin/email", form)
}

// UseLinkWithCode opens the link (a page with a Continue button, so that
// mail scanners that fetch links do not use them up) and posts its token,
// with code when it is not "", as a page loaded earlier would even when
// the link is used up by now.
func UseLinkWithCode(b *Browser, link, code string) (*http.Response, string) {
	b.T.Helper()
	resp, page := b.Get(link)
	if resp.StatusCode == http.StatusOK && !strings.Contains(page, "Finish signing in") {
		b.T.Fatalf("opening the link: no confirmation page")
	}
	u, _ := url.Parse(link)
	form := url.Values{"token": {u.Query().Get("token")}}
	if code != "" {
		form.Set("code", code)
	}
	return b.Post(u.Scheme+"://"+u.Host+"/auth/callback/email", form)
}

// UseLink is UseLinkWithCode without a code: the link in the browser that
// asked for it.
func UseLink(b *Browser, link string) (*http.Response, string) {
	b.T.Helper()
	return UseLinkWithCode(b, link, "")
}
