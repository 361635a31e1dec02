package signin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Magic-link defaults.
const (
	DefaultLinkTTL = 15 * time.Minute
	// MaxLinkTTL keeps a link from outliving its purpose.
	MaxLinkTTL = 24 * time.Hour
	// DefaultMaxSends is how many links one address gets per SendWindow.
	DefaultMaxSends   = 5
	DefaultSendWindow = time.Hour
	// smtpTimeout bounds one email's delivery to the SMTP server.
	smtpTimeout  = 15 * time.Second
	linkKey      = "email-link:"
	sendRateKey  = "email-send:"
	codeTriesKey = "email-code-try:"
	codeWrongKey = "email-code-wrong:"
	// linkCookieName binds a link to the browser that asked for it;
	// __Host- prefixed where the session cookie is.
	linkCookieName = "convex_auth_link"
	bindingChars   = 43 // a randomToken
	codeDigits     = 8
	// MaxCodeTries is how many codes a link accepts before it is dead.
	MaxCodeTries = 5
	emailSubject = "Your sign-in link"
)

// SMTP connection security.
const (
	SMTPStartTLS = "starttls" // plain connection upgraded with STARTTLS (port 587)
	SMTPTLS      = "tls"      // TLS from the first byte (port 465)
	SMTPNone     = "none"     // no TLS: only for a relay on this machine
)

// EmailConfig configures magic links.
type EmailConfig struct {
	// Mailer sends the links. Required.
	Mailer Mailer
	// LinkTTL is how long a link works. Default: 15m.
	LinkTTL time.Duration
	// MaxSends is how many links one address gets per SendWindow.
	// Default: 5.
	MaxSends int
	// SendWindow. Default: 1h.
	SendWindow time.Duration
}

func (c *EmailConfig) fill() error {
	if c.Mailer == nil {
		return errors.New("signin: email sign-in needs a mailer (smtp_host and from)")
	}
	if c.LinkTTL == 0 {
		c.LinkTTL = DefaultLinkTTL
	}
	if c.MaxSends == 0 {
		c.MaxSends = DefaultMaxSends
	}
	if c.SendWindow == 0 {
		c.SendWindow = DefaultSendWindow
	}
	if c.LinkTTL < time.Minute || c.LinkTTL > MaxLinkTTL {
		return fmt.Errorf("signin: email link_ttl %s is out of range: use 1m to %s", c.LinkTTL, MaxLinkTTL)
	}
	if c.MaxSends < 1 || c.SendWindow < time.Second {
		return errors.New("signin: email max_sends must be at least 1 and the window at least 1s")
	}
	return nil
}

// Mailer sends one plain-text email.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// SMTPMailer sends through an SMTP server with net/smtp.
type SMTPMailer struct {
	Host string
	Port int
	// Security is SMTPStartTLS (default), SMTPTLS or SMTPNone.
	Security string
	// Username and Password authenticate with AUTH PLAIN, over TLS only
	// (or to a loopback server).
	Username string
	Password string
	// From is the sender address, e.g. "Example <login@example.com>".
	From string
	// TLSConfig overrides the TLS settings (tests: a private CA).
	TLSConfig *tls.Config
}

// Validate checks the mailer's settings. Its errors name the option at
// fault, like a config error, and carry no package prefix: the caller says
// which provider they belong to.
func (m *SMTPMailer) Validate() error {
	if m.Host == "" {
		return errors.New("email needs smtp_host")
	}
	if m.Port < 0 || m.Port > 65535 {
		return fmt.Errorf("smtp_port %d is not a port", m.Port)
	}
	switch m.Security {
	case "", SMTPStartTLS, SMTPTLS, SMTPNone:
	default:
		return fmt.Errorf("smtp_tls %q is unknown: use starttls, tls or none", m.Security)
	}
	if m.From == "" {
		return errors.New("email needs from, the sender address")
	}
	if _, err := parseFrom(m.From); err != nil {
		return fmt.Errorf("from %q is not an email address: %w", m.From, err)
	}
	if (m.Username == "") != (m.Password == "") {
		return errors.New("smtp_username and smtp_password go together")
	}
	return nil
}

func parseFrom(from string) (string, error) {
	if strings.ContainsAny(from, "\r\n") {
		return "", errors.New("it holds a line break")
	}
	a, err := mailParseAddress(from)
	if err != nil {
		return "", err
	}
	return a, nil
}

func mailParseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

func (m *SMTPMailer) port() int {
	if m.Port != 0 {
		return m.Port
	}
	switch m.Security {
	case SMTPTLS:
		return 465
	case SMTPNone:
		return 25
	}
	return 587
}

func (m *SMTPMailer) tlsConfig() *tls.Config {
	if m.TLSConfig != nil {
		c := m.TLSConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = m.Host
		}
		return c
	}
	return &tls.Config{ServerName: m.Host, MinVersion: tls.VersionTLS12}
}

// Send implements Mailer.
func (m *SMTPMailer) Send(ctx context.Context, to, subject, body string) error {
	from, err := parseFrom(m.From)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.port()))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to the SMTP server: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if m.Security == SMTPTLS {
		conn = tls.Client(conn, m.tlsConfig())
	}
	c, err := smtp.NewClient(conn, m.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("SMTP greeting: %w", err)
	}
	defer c.Close()
	if m.Security == "" || m.Security == SMTPStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the SMTP server does not offer STARTTLS: use smtp_tls tls for port 465, or fix the server")
		}
		if err := c.StartTLS(m.tlsConfig()); err != nil {
			return fmt.Errorf("SMTP STARTTLS: %w", err)
		}
	}
	if m.Username != "" {
		// net/smtp refuses PLAIN without TLS except to localhost.
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, m.Host)); err != nil {
			return fmt.Errorf("SMTP authentication: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("SMTP RCPT TO: %w", err)
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := wc.Write(buildMessage(m.From, to, subject, body)); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	return c.Quit()
}

// buildMessage is a plain-text RFC 5322 message with CRLF line ends.
func buildMessage(from, to, subject, body string) []byte {
	var b bytes.Buffer
	domain := "localhost"
	if f, err := parseFrom(from); err == nil {
		domain = f[strings.LastIndexByte(f, '@')+1:]
	}
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from)
	header("To", to)
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", time.Now().UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+randomToken()+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
	return b.Bytes()
}

// linkRecord is what the store keeps of a sent link, under its token.
type linkRecord struct {
	Email      string `json:"e"`
	RedirectTo string `json:"r"`
	// Browser is the hash of the binding cookie of the browser that asked.
	Browser string `json:"b"`
	// Code is an HMAC of the mailed code keyed by the token, so the store
	// alone cannot be searched for it.
	Code string `json:"c"`
}

// serveEmailRequest handles POST /auth/signin/email: it sends a magic link
// and its code to the address, whether or not an account exists for it,
// and binds the link to this browser with a cookie.
func (s *Service) serveEmailRequest(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	cfg := s.cfg.Email
	redirectTo := s.cfg.Redirects.Resolve(r.PostForm.Get("redirectTo"))
	again := func(status int, code string) {
		d := s.pageFor("signin", code, redirectTo)
		d.Email = truncate(r.PostForm.Get("email"), session.MaxEmailBytes)
		s.render(w, r, status, d)
	}
	email, ok := normalizeAddress(r.PostForm.Get("email"))
	if !ok {
		again(http.StatusBadRequest, "bad_email")
		return
	}
	if s.limited(w, r, LimitEmailSend, LimitGlobalEmailSend, again) {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	sends := rateLimit{flow: "email sign-in", key: sendRateKey + email, max: cfg.MaxSends, window: cfg.SendWindow,
		reason: "too many links sent to the address", code: "too_many_links"}
	if s.overLimit(ctx, sends, again) {
		return
	}
	binding := s.linkBinding(w, r, cfg.LinkTTL)
	token, code := randomToken(), randomCode()
	rec := linkRecord{Email: email, RedirectTo: redirectTo, Browser: hashBinding(binding), Code: codeMAC(token, code)}
	if err := s.cfg.Users.PutOnce(ctx, linkKey+token, marshal(rec), cfg.LinkTTL); err != nil {
		s.logger.Warn("email sign-in could not save the link", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	link := s.cfg.Origin + callbackPrefix + ProviderEmail + "?" + url.Values{"token": {token}}.Encode()
	host := strings.TrimPrefix(strings.TrimPrefix(s.cfg.Origin, "https://"), "http://")
	body := fmt.Sprintf("Use this link to sign in to %s:\n\n%s\n\nIf the link opens in another browser or device than the one you asked from, enter this code there:\n\n%s\n\nThe link works once and expires in %s.\nIf you did not ask to sign in, ignore this email and never give the code to anyone.\n",
		host, link, code, humanDuration(cfg.LinkTTL))
	if err := cfg.Mailer.Send(r.Context(), email, emailSubject, body); err != nil {
		s.logger.Warn("sending a sign-in link failed", zap.Error(err))
		again(http.StatusServiceUnavailable, "send_failed")
		return
	}
	s.logger.Info("sign-in link sent")
	d := s.pageFor("check_email", "", redirectTo)
	d.Email = email
	s.render(w, r, http.StatusOK, d)
}

// serveEmailCallback: GET shows a page naming the account, with a button
// that posts the token back (mail scanners that open links must not use
// them up) and, in a browser that did not ask for the link, a code field.
// POST takes the token, once, and signs in: in the browser that asked for
// the link by itself, anywhere else only with the mailed code.
func (s *Service) serveEmailCallback(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	var token string
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		token = r.URL.Query().Get("token")
	} else {
		if !s.readForm(w, r) {
			return false
		}
		token = r.PostForm.Get("token")
	}
	if token == "" || len(token) > 2*randomBytes {
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "link"))
		return false
	}
	rec, ok := s.peekLink(w, r, token)
	if !ok {
		return false
	}
	bound := s.boundHere(r, rec)
	confirm := func(status int, code string) {
		d := s.pageFor("confirm_email", code, rec.RedirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeLength = token, rec.Email, !bound, codeDigits
		s.render(w, r, status, d)
	}
	if r.Method != http.MethodPost {
		confirm(http.StatusOK, "")
		return false
	}
	if !bound {
		code := strings.Join(strings.Fields(r.PostForm.Get("code")), "")
		if code == "" {
			confirm(http.StatusBadRequest, "code_needed")
			return false
		}
		if !s.checkCode(w, r, token, code, rec, confirm) {
			return false
		}
	}
	ctx, cancel := storeCtx(r)
	_, err := s.cfg.Users.TakeOnce(ctx, linkKey+token)
	cancel()
	if s.linkFailed(w, r, err) {
		return false
	}
	// Opening the link in the browser that asked for it, or typing its
	// code, proves control of the address.
	user, err := s.resolveAs(r.Context(), ProviderEmail, Identity{Subject: rec.Email, Email: rec.Email, EmailVerified: true}, s.currentGuest(r.Context(), r))
	if err != nil {
		s.logger.Warn("email sign-in could not find or create the user", zap.Error(err))
		s.render(w, r, http.StatusServiceUnavailable, s.pageData(r, "signin", "unavailable"))
		return false
	}
	return s.finish(w, r, user, ProviderEmail, rec.RedirectTo)
}

// linkFailed answers a failed read or take of a link and reports whether
// err was a failure.
func (s *Service) linkFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, session.ErrNotFound):
		s.logger.Info("email sign-in refused: unknown, expired or used link")
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "link"))
	default:
		s.logger.Warn("email sign-in could not reach the store", zap.Error(err))
		s.render(w, r, http.StatusServiceUnavailable, s.pageData(r, "signin", "unavailable"))
	}
	return true
}

// peekLink reads the link's record without using it up; on failure it has
// answered.
func (s *Service) peekLink(w http.ResponseWriter, r *http.Request, token string) (linkRecord, bool) {
	var rec linkRecord
	ctx, cancel := storeCtx(r)
	raw, err := s.cfg.Users.PeekOnce(ctx, linkKey+token)
	cancel()
	if s.linkFailed(w, r, err) {
		return rec, false
	}
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Email == "" || rec.Browser == "" || rec.Code == "" {
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "link"))
		return rec, false
	}
	return rec, true
}

// checkCode counts a code attempt against the link and compares it. Every
// attempt is counted before the comparison, so parallel guesses get
// MaxCodeTries in all; the last wrong one kills the link.
func (s *Service) checkCode(w http.ResponseWriter, r *http.Request, token, code string, rec linkRecord, confirm func(int, string)) bool {
	ctx, cancel := storeCtx(r)
	defer cancel()
	ttl := s.cfg.Email.LinkTTL
	kill := func() {
		if _, err := s.cfg.Users.TakeOnce(ctx, linkKey+token); err != nil && !errors.Is(err, session.ErrNotFound) {
			s.logger.Warn("email sign-in could not end a guessed link", zap.Error(err))
		}
	}
	ok, err := s.cfg.Users.RateHit(ctx, codeTriesKey+token, MaxCodeTries, ttl)
	if err != nil {
		s.logger.Warn("email sign-in could not reach the store", zap.Error(err))
		confirm(http.StatusServiceUnavailable, "unavailable")
		return false
	}
	if !ok {
		kill()
		s.logger.Info("email sign-in refused: too many wrong codes")
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "code_dead"))
		return false
	}
	if constantTimeEqual(codeMAC(token, code), rec.Code) {
		return true
	}
	s.logger.Info("email sign-in refused: wrong code")
	if last, err := s.cfg.Users.RateHit(ctx, codeWrongKey+token, MaxCodeTries-1, ttl); err == nil && !last {
		kill()
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "code_dead"))
		return false
	}
	confirm(http.StatusBadRequest, "code")
	return false
}

// linkBinding returns the browser's link-binding cookie value, a new one
// when it has none, and sets it to last as long as the new link: the
// browser keeps one value for all its pending links.
func (s *Service) linkBinding(w http.ResponseWriter, r *http.Request, ttl time.Duration) string {
	name := s.linkCookie(r)
	v := randomToken()
	if c, err := r.Cookie(name); err == nil && len(c.Value) == bindingChars {
		v = c.Value
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: v, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode,
	})
	return v
}

// boundHere reports whether r comes from the browser that asked for rec.
func (s *Service) boundHere(r *http.Request, rec linkRecord) bool {
	c, err := r.Cookie(s.linkCookie(r))
	return err == nil && c.Value != "" && constantTimeEqual(hashBinding(c.Value), rec.Browser)
}

func (s *Service) linkCookie(r *http.Request) string {
	if httprule.SecureRequest(r) {
		return "__Host-" + linkCookieName + s.cookieSuffix
	}
	return linkCookieName + s.cookieSuffix
}

func hashBinding(v string) string {
	h := sha256.Sum256([]byte("convex-auth link binding\x00" + v))
	return b64url(h[:])
}

func codeMAC(token, code string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(code))
	return b64url(m.Sum(nil))
}

// randomCode is codeDigits random decimal digits, uniform.
func randomCode() string {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(codeDigits), nil)
	n, _ := rand.Int(rand.Reader, limit) // never fails on supported platforms
	return fmt.Sprintf("%0*d", codeDigits, n.Int64())
}

func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
