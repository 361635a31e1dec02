package signin

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpReceiver is an SMTP server (emersion/go-smtp) on loopback that keeps
// every message it receives.
type smtpReceiver struct {
	addr     string
	username string
	password string
	mu       sync.Mutex
	msgs     []receivedMail
	arrived  chan struct{}
}

type receivedMail struct {
	from string
	to   []string
	data []byte
	auth bool // the session authenticated
	tls  bool // the session was over TLS
}

func startSMTP(t *testing.T, tlsConfig *tls.Config, username, password string) *smtpReceiver {
	t.Helper()
	r := &smtpReceiver{username: username, password: password, arrived: make(chan struct{}, 100)}
	srv := smtp.NewServer(r)
	srv.Domain = "localhost"
	srv.TLSConfig = tlsConfig
	srv.AllowInsecureAuth = tlsConfig == nil
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *smtpReceiver) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{r: r, conn: c}, nil
}

type smtpSession struct {
	r    *smtpReceiver
	conn *smtp.Conn
	m    receivedMail
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.r.username || password != s.r.password {
			return errors.New("invalid credentials")
		}
		s.m.auth = true
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.username != "" && !s.m.auth {
		return smtp.ErrAuthRequired
	}
	s.m.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.m.tls = s.conn.TLSConnectionState()
	s.m.data = data
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, s.m)
	s.r.mu.Unlock()
	s.r.arrived <- struct{}{}
	return nil
}

func (s *smtpSession) Reset()        { s.m = receivedMail{auth: s.m.auth} }
func (s *smtpSession) Logout() error { return nil }

func (r *smtpReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *smtpReceiver) last(t *testing.T) receivedMail {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) == 0 {
		t.Fatal("no mail arrived")
	}
	return r.msgs[len(r.msgs)-1]
}

var linkPattern = regexp.MustCompile(`https?://\S+/auth/callback/email\?token=[A-Za-z0-9_-]+`)

// link reads the sign-in link out of the last mail.
func (r *smtpReceiver) link(t *testing.T) string {
	t.Helper()
	m := r.last(t)
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatalf("the mail is not RFC 5322: %v", err)
	}
	body, _ := io.ReadAll(msg.Body)
	link := linkPattern.FindString(string(body))
	if link == "" {
		t.Fatalf("no sign-in link in the mail:\n%s", body)
	}
	return link
}

func newEmailEnv(t *testing.T, rcv *smtpReceiver, mailer *SMTPMailer) *env {
	host, port, _ := net.SplitHostPort(rcv.addr)
	mailer.Host = host
	mailer.Port = atoi(port)
	if mailer.From == "" {
		mailer.From = "Example <login@example.com>"
	}
	return newEnv(t, func(c *Config, origin string) {
		c.Email = &EmailConfig{Mailer: mailer}
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func requestLink(t *testing.T, e *env, b *browser, email, redirectTo string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"email": {email}}
	if redirectTo != "" {
		form.Set("redirectTo", redirectTo)
	}
	return b.post(e.origin+"/auth/signin/email", form)
}

// useLink opens the link (a page with a Continue button, so that mail
// scanners that fetch links do not use them up) and posts its token.
func useLink(t *testing.T, b *browser, link string) (*http.Response, string) {
	t.Helper()
	resp, page := b.get(link)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Finish signing in") {
		t.Fatalf("opening the link: %d", resp.StatusCode)
	}
	u, _ := url.Parse(link)
	return b.post(u.Scheme+"://"+u.Host+"/auth/callback/email", url.Values{"token": {u.Query().Get("token")}})
}

func TestEmailLinkSignsInOnce(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &SMTPMailer{Security: SMTPNone})
	b := newBrowser(t)
	resp, page := requestLink(t, e, b, " Ada@Example.com", "/loggedin")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Check your email") || !strings.Contains(page, "ada@example.com") {
		t.Fatalf("requesting a link: %d", resp.StatusCode)
	}
	m := rcv.last(t)
	if len(m.to) != 1 || m.to[0] != "ada@example.com" || m.from != "login@example.com" {
		t.Fatalf("mail from %q to %v", m.from, m.to)
	}
	if !bytes.Contains(m.data, []byte("Subject: Your sign-in link")) || !bytes.Contains(m.data, []byte("expires in 15 minutes")) {
		t.Fatalf("mail:\n%s", m.data)
	}
	link := rcv.link(t)
	if !strings.HasPrefix(link, e.origin+"/auth/callback/email?token=") {
		t.Fatalf("link %s does not point at the site", link)
	}
	// The store holds no token.
	token, _ := url.Parse(link)
	if _, err := e.store.TakeOnce(context.Background(), token.Query().Get("token")); err == nil {
		t.Fatal("the link's token is a store key as it is")
	}

	// Opening the link alone (a scanner) signs nobody in and uses nothing.
	scanner := newBrowser(t)
	scanner.get(link)
	if _, ok := scanner.whoami(e.origin); ok {
		t.Fatal("a GET of the link signed in")
	}
	resp, _ = useLink(t, b, link)
	if resp.StatusCode != http.StatusSeeOther || location(t, resp) != e.origin+"/loggedin" {
		t.Fatalf("using the link: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	w, ok := b.whoami(e.origin)
	if !ok || w.Email != "ada@example.com" || !w.EmailVerified || w.Provider != "email" {
		t.Fatalf("after the link: %+v, %v; want a verified email", w, ok)
	}

	// Once only.
	b2 := newBrowser(t)
	resp, body := useLink(t, b2, link)
	if resp.StatusCode != http.StatusBadRequest || !pageShows(body, "link") {
		t.Fatalf("second use: %d; want 400 with a clear message", resp.StatusCode)
	}
	if _, ok := b2.whoami(e.origin); ok {
		t.Fatal("the second use signed in")
	}

	// A second link for the address finds the same user.
	requestLink(t, e, b2, "ada@example.com", "")
	useLink(t, b2, rcv.link(t))
	if again, _ := b2.whoami(e.origin); again.UserID != w.UserID {
		t.Fatalf("second link: user %s; want %s", again.UserID, w.UserID)
	}
}

func TestEmailLinkExpires(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &SMTPMailer{Security: SMTPNone})
	b := newBrowser(t)
	requestLink(t, e, b, "ada@example.com", "")
	e.clock.Advance(DefaultLinkTTL)
	resp, body := useLink(t, b, rcv.link(t))
	if resp.StatusCode != http.StatusBadRequest || !pageShows(body, "link") {
		t.Fatalf("expired link: %d; want 400", resp.StatusCode)
	}
	if _, ok := b.whoami(e.origin); ok {
		t.Fatal("an expired link signed in")
	}
}

func TestEmailSendLimit(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &SMTPMailer{Security: SMTPNone})
	b := newBrowser(t)
	for i := range DefaultMaxSends {
		if resp, _ := requestLink(t, e, b, "ada@example.com", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("send %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := requestLink(t, e, b, "ADA@example.com", "")
	if resp.StatusCode != http.StatusTooManyRequests || !pageShows(body, "too_many_links") {
		t.Fatalf("send past the limit: %d; want 429", resp.StatusCode)
	}
	if rcv.count() != DefaultMaxSends {
		t.Fatalf("%d mails sent; want %d", rcv.count(), DefaultMaxSends)
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
	e := newEmailEnv(t, rcv, &SMTPMailer{Security: SMTPStartTLS, Username: "mailer", Password: "smtp-secret",
		TLSConfig: &tls.Config{RootCAs: roots}})
	if resp, body := requestLink(t, e, newBrowser(t), "ada@example.com", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("request over STARTTLS: %d %s", resp.StatusCode, body)
	}
	if m := rcv.last(t); !m.tls || !m.auth {
		t.Fatalf("mail arrived with tls=%v auth=%v; want both", m.tls, m.auth)
	}

	// A server without STARTTLS is refused rather than sent to in clear.
	plain := startSMTP(t, nil, "", "")
	e2 := newEmailEnv(t, plain, &SMTPMailer{Security: SMTPStartTLS})
	resp, body := requestLink(t, e2, newBrowser(t), "ada@example.com", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !pageShows(body, "send_failed") || plain.count() != 0 {
		t.Fatalf("no STARTTLS: %d, %d mails; want 503 and none", resp.StatusCode, plain.count())
	}
}

func TestSMTPMailerValidate(t *testing.T) {
	good := SMTPMailer{Host: "smtp.example.com", From: "Example <login@example.com>"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]SMTPMailer{
		"no host":       {From: "a@example.com"},
		"no from":       {Host: "h"},
		"bad from":      {Host: "h", From: "not an address"},
		"from newline":  {Host: "h", From: "a@example.com\r\nBcc: b@example.com"},
		"bad security":  {Host: "h", From: "a@example.com", Security: "ssl"},
		"half the auth": {Host: "h", From: "a@example.com", Username: "u"},
	} {
		if err := m.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}
