package signin

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

var (
	startSMTP = signintest.StartSMTP
	mailLink  = signintest.MailLink
	mailCode  = signintest.MailCode
	mailText  = signintest.MailText
	mailParts = signintest.MailParts
	wrongCode = signintest.WrongCode
)

func newEmailEnv(t *testing.T, rcv *smtpReceiver, mailer *mail.SMTPMailer) *env {
	to := signintest.Mailer(rcv)
	mailer.Host, mailer.Port = to.Host, to.Port
	if mailer.From == "" {
		mailer.From = to.From
	}
	return newEnv(t, func(c *Config, origin string) {
		c.Email = &EmailConfig{Mailer: mailer}
	})
}

func requestLink(t *testing.T, e *env, b *browser, email, redirectTo string) (*http.Response, string) {
	t.Helper()
	return signintest.RequestLink(b, e.origin, email, redirectTo)
}

// useLink opens the link and posts its token, as its page does.
func useLink(t *testing.T, b *browser, link string) (*http.Response, string) {
	t.Helper()
	return signintest.UseLink(b, link)
}

// useLinkWithCode is useLink with a code typed into the page.
func useLinkWithCode(t *testing.T, b *browser, link, code string) (*http.Response, string) {
	t.Helper()
	return signintest.UseLinkWithCode(b, link, code)
}

func TestEmailLinkSignsInOnce(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	b := newBrowser(t)
	resp, page := requestLink(t, e, b, " Ada@Example.com", "/loggedin")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Check your email") || !strings.Contains(page, "ada@example.com") {
		t.Fatalf("requesting a link: %d", resp.StatusCode)
	}
	m := rcv.Last(t)
	if len(m.To) != 1 || m.To[0] != "ada@example.com" || m.From != "login@example.com" {
		t.Fatalf("mail from %q to %v", m.From, m.To)
	}
	if !bytes.Contains(m.Data, []byte("Subject: Your sign-in link")) || !bytes.Contains(m.Data, []byte("expires in 15 minutes")) {
		t.Fatalf("mail:\n%s", m.Data)
	}
	link := mailLink(t, rcv)
	if !strings.HasPrefix(link, e.origin+"/auth/callback/email?token=") {
		t.Fatalf("link %s does not point at the site", link)
	}
	// The store holds no token.
	token, _ := url.Parse(link)
	if _, err := e.store.TakeOnce(context.Background(), token.Query().Get("token")); err == nil {
		t.Fatal("the link's token is a store key as it is")
	}

	// Opening the link alone (a scanner) signs nobody in and uses nothing,
	// but from then on the link needs its code, in the asking browser too.
	scanner := newBrowser(t)
	scanner.Get(link)
	if _, ok := scanner.Whoami(e.origin); ok {
		t.Fatal("a GET of the link signed in")
	}
	if resp, page := b.Back(useLink(t, b, link)); resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") {
		t.Fatalf("the asking browser without the code, after a scanner opened the link: %d; want the page asking for the code", resp.StatusCode)
	}
	resp, _ = useLinkWithCode(t, b, link, mailCode(t, rcv))
	if !succeeded(resp) || location(t, resp) != e.origin+"/loggedin" {
		t.Fatalf("using the link: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	w, ok := b.Whoami(e.origin)
	if !ok || w.Email != "ada@example.com" || !w.EmailVerified || w.Provider != "email" {
		t.Fatalf("after the link: %+v, %v; want a verified email", w, ok)
	}

	// Once only.
	b2 := newBrowser(t)
	resp, body := b2.Back(useLink(t, b2, link))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "link") {
		t.Fatalf("second use: %d; want the sign-in page with a clear message", resp.StatusCode)
	}
	if _, ok := b2.Whoami(e.origin); ok {
		t.Fatal("the second use signed in")
	}

	// A second link for the address finds the same user.
	requestLink(t, e, b2, "ada@example.com", "")
	useLink(t, b2, mailLink(t, rcv))
	if again, _ := b2.Whoami(e.origin); again.UserID != w.UserID {
		t.Fatalf("second link: user %s; want %s", again.UserID, w.UserID)
	}
}

func TestEmailLinkExpires(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	b := newBrowser(t)
	requestLink(t, e, b, "ada@example.com", "")
	e.clock.Advance(DefaultLinkTTL)
	resp, body := b.Back(useLink(t, b, mailLink(t, rcv)))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "link") {
		t.Fatalf("expired link: %d; want the sign-in page saying so", resp.StatusCode)
	}
	if _, ok := b.Whoami(e.origin); ok {
		t.Fatal("an expired link signed in")
	}
}

func TestEmailSendLimit(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	b := newBrowser(t)
	for i := range DefaultMaxSends {
		if resp, _ := requestLink(t, e, b, "ada@example.com", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("send %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := b.Back(requestLink(t, e, b, "ADA@example.com", ""))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "too_many_links") || !strings.Contains(body, `value="ADA@example.com"`) {
		t.Fatalf("send past the limit: %d; want the sign-in page saying so, the address kept", resp.StatusCode)
	}
	if rcv.Count() != DefaultMaxSends {
		t.Fatalf("%d mails sent; want %d", rcv.Count(), DefaultMaxSends)
	}
	if resp, _ := requestLink(t, e, b, "grace@example.com", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("another address: %d", resp.StatusCode)
	}
}

func TestEmailStartTLSWithAuth(t *testing.T) {
	// httptest's certificate is valid for 127.0.0.1.
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	cert := ts.TLS.Certificates[0]
	roots := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ts.Close()
	rcv := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{cert}}, "mailer", "smtp-secret")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPStartTLS, Username: "mailer", Password: "smtp-secret",
		TLSConfig: &tls.Config{RootCAs: roots}})
	if resp, body := requestLink(t, e, newBrowser(t), "ada@example.com", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("request over STARTTLS: %d %s", resp.StatusCode, body)
	}
	if m := rcv.Last(t); !m.TLS || !m.Auth {
		t.Fatalf("mail arrived with tls=%v auth=%v; want both", m.TLS, m.Auth)
	}

	// A server without STARTTLS is refused rather than sent to in clear.
	plain := startSMTP(t, nil, "", "")
	e2 := newEmailEnv(t, plain, &mail.SMTPMailer{Security: mail.SMTPStartTLS})
	b := newBrowser(t)
	resp, body := b.Back(requestLink(t, e2, b, "ada@example.com", ""))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "send_failed") || plain.Count() != 0 {
		t.Fatalf("no STARTTLS: %d, %d mails; want the sign-in page saying so and none", resp.StatusCode, plain.Count())
	}
}

func TestEmailLinkInAnotherBrowserNeedsTheCode(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	asker := newBrowser(t)
	requestLink(t, e, asker, "ada@example.com", "/loggedin")
	link, code := mailLink(t, rcv), mailCode(t, rcv)

	// The store keeps neither the code nor the binding cookie.
	u, _ := url.Parse(link)
	raw, err := e.store.PeekOnce(context.Background(), linkKey+u.Query().Get("token"))
	if err != nil {
		t.Fatal(err)
	}
	binding := asker.Cookie(e.origin, linkCookieName)
	if binding == "" || strings.Contains(string(raw), code) || strings.Contains(string(raw), binding) {
		t.Fatalf("binding cookie %q; the stored link %s holds the code or the cookie", binding, raw)
	}

	// Another browser sees whose link it is and a code field.
	other := newBrowser(t)
	resp, page := other.Get(link)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<strong>ada@example.com</strong>") || !strings.Contains(page, `name="code"`) {
		t.Fatalf("opening the link elsewhere: %d, want the account named and a code field:\n%s", resp.StatusCode, page)
	}
	// Continue alone, as a log reader with the URL would, signs nobody in.
	resp, page = other.Back(useLink(t, other, link))
	if resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") || !strings.Contains(page, `name="code"`) {
		t.Fatalf("the token alone: %d; want the link's page asking for the code", resp.StatusCode)
	}
	if _, ok := other.Whoami(e.origin); ok {
		t.Fatal("the token without the code signed in")
	}
	// With the code, it signs in; spaces in the code are forgiven.
	resp, _ = useLinkWithCode(t, other, link, code[:4]+" "+code[4:])
	if !succeeded(resp) || location(t, resp) != e.origin+"/loggedin" {
		t.Fatalf("with the code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if w, ok := other.Whoami(e.origin); !ok || w.Email != "ada@example.com" {
		t.Fatalf("after the code: %+v, %v", w, ok)
	}
}

func TestEmailLinkInItsBrowserNeedsNoCode(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	b := newBrowser(t)
	requestLink(t, e, b, "ada@example.com", "")
	link := mailLink(t, rcv)
	resp, page := b.Get(link)
	if resp.StatusCode != http.StatusOK || strings.Contains(page, `name="code"`) || !strings.Contains(page, "ada@example.com") {
		t.Fatalf("opening the link where it was asked for: %d; want the account named and no code field", resp.StatusCode)
	}
	if resp, _ := useLink(t, b, link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("using the link where it was asked for: %d", resp.StatusCode)
	}
	if _, ok := b.Whoami(e.origin); !ok {
		t.Fatal("the asking browser is not signed in")
	}
	// A forged binding cookie is no binding: it needs the code, and then
	// so does the asking browser.
	b = newBrowser(t)
	requestLink(t, e, b, "ada@example.com", "")
	link = mailLink(t, rcv)
	forged := newBrowser(t)
	origin, _ := url.Parse(e.origin)
	forged.C.Jar.SetCookies(origin, []*http.Cookie{{Name: linkCookieName, Value: strings.Repeat("A", bindingChars), Path: "/"}})
	if resp, page := forged.Back(useLink(t, forged, link)); resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") {
		t.Fatalf("a forged binding cookie: %d", resp.StatusCode)
	}
	if resp, page := b.Back(useLink(t, b, link)); resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") {
		t.Fatalf("the asking browser after another presented the link: %d; want the page asking for the code", resp.StatusCode)
	}
}

// TestLinkPresentedElsewhereNeedsItsCodeEverywhere: the first time a
// browser that did not ask for a link presents it, by GET, HEAD or a POST
// without the code, the link needs its code from then on, in the asking
// browser too; with the code it still works there. The same holds for
// verification and reset links (TestVerifyOptional, TestPasswordReset).
func TestLinkPresentedElsewhereNeedsItsCodeEverywhere(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		b := newBrowser(t)
		requestLink(t, e, b, strings.ToLower(method)+"@example.com", "")
		link := mailLink(t, rcv)
		code := mailCode(t, rcv)
		scanner := newBrowser(t)
		if method == http.MethodPost {
			_, token := tokenOf(t, link)
			scanner.Post(e.origin+"/auth/callback/email", url.Values{"token": {token}})
		} else {
			req, _ := http.NewRequest(method, link, nil)
			scanner.Do(req)
		}
		resp, page := b.Get(link)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="code"`) {
			t.Fatalf("%s elsewhere, then the asking browser's page: %d, code field %v; want one", method, resp.StatusCode, strings.Contains(page, `name="code"`))
		}
		if resp, page := b.Back(useLink(t, b, link)); resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") {
			t.Fatalf("%s elsewhere, then the asking browser without the code: %d", method, resp.StatusCode)
		}
		if _, ok := b.Whoami(e.origin); ok {
			t.Fatalf("%s elsewhere: the asking browser signed in without the code", method)
		}
		if resp, _ := useLinkWithCode(t, b, link, code); !succeeded(resp) {
			t.Fatalf("%s elsewhere, then the asking browser with the code: %d", method, resp.StatusCode)
		}
	}
}

func TestEmailLinkDiesAfterFiveWrongCodes(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	asker := newBrowser(t)
	requestLink(t, e, asker, "ada@example.com", "")
	link, code := mailLink(t, rcv), mailCode(t, rcv)
	other := newBrowser(t)
	for i := 1; i <= MaxCodeTries; i++ {
		resp, page := other.Back(useLinkWithCode(t, other, link, wrongCode(code)))
		want := "code"
		if i == MaxCodeTries {
			want = "code_dead"
		}
		if resp.StatusCode != http.StatusOK || !pageShows(page, want) {
			t.Fatalf("wrong code %d: %d; want the page saying %s", i, resp.StatusCode, want)
		}
	}
	// Dead for the right code and for the browser that asked.
	if resp, page := other.Back(useLinkWithCode(t, other, link, code)); !pageShows(page, "link") {
		t.Fatalf("the right code after %d wrong ones: %d", MaxCodeTries, resp.StatusCode)
	}
	if resp, page := asker.Back(useLink(t, asker, link)); !pageShows(page, "link") {
		t.Fatalf("the asking browser after %d wrong codes: %d", MaxCodeTries, resp.StatusCode)
	}
	if _, ok := other.Whoami(e.origin); ok {
		t.Fatal("signed in after the link died")
	}
	if _, ok := asker.Whoami(e.origin); ok {
		t.Fatal("signed in after the link died")
	}
}

func TestEmailCodeGuessesInParallelAreBounded(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	requestLink(t, e, newBrowser(t), "ada@example.com", "")
	link, code := mailLink(t, rcv), mailCode(t, rcv)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { useLinkWithCode(t, newBrowser(t), link, wrongCode(code)) })
	}
	wg.Wait()
	last := newBrowser(t)
	if resp, page := last.Back(useLinkWithCode(t, last, link, code)); !pageShows(page, "link") {
		t.Fatalf("the right code after 20 parallel wrong ones: %d; want the link dead", resp.StatusCode)
	}
}

// TestBindingCookiesFollowTheSessionCookieRule: the link-binding and flow
// cookies are __Host- prefixed, Secure, HttpOnly, Path=/ and host-only on
// any host but plain-http localhost.
func TestBindingCookiesFollowTheSessionCookieRule(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	req := httptest.NewRequest(http.MethodPost, "http://app.example/auth/signin/email", strings.NewReader("email=ada%40example.com"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://app.example")
	rec := httptest.NewRecorder()
	e.svc.Handle(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("asking for a link: %d", rec.Code)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v; want the binding cookie", cookies)
	}
	c := cookies[0]
	if c.Name != "__Host-"+linkCookieName || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("binding cookie %+v breaks the naming rule", c)
	}
	// The same browser asking again keeps its value.
	req = httptest.NewRequest(http.MethodPost, "http://app.example/auth/signin/email", strings.NewReader("email=ada%40example.com"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://app.example")
	req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	rec = httptest.NewRecorder()
	e.svc.Handle(rec, req)
	if again := rec.Result().Cookies(); len(again) != 1 || again[0].Value != c.Value || again[0].MaxAge <= 0 {
		t.Fatalf("a second link reset the binding cookie: %v", again)
	}
}
