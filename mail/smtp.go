package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// SMTP connection security.
const (
	SMTPStartTLS = "starttls" // plain connection upgraded with STARTTLS (port 587)
	SMTPTLS      = "tls"      // TLS from the first byte (port 465)
	SMTPNone     = "none"     // no TLS: only for a relay on this machine
)

// smtpTimeout bounds one email's delivery to the SMTP server.
const smtpTimeout = 15 * time.Second

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
// which provider they belong to. A From holding a placeholder ({env.X})
// is checked once the host has replaced it.
func (m *SMTPMailer) Validate() error {
	if m.Host == "" || m.From == "" {
		return errors.New("email needs smtp_host and from")
	}
	if m.Port < 0 || m.Port > 65535 {
		return fmt.Errorf("smtp_port %d is not a port", m.Port)
	}
	switch m.Security {
	case "", SMTPStartTLS, SMTPTLS, SMTPNone:
	default:
		return fmt.Errorf("smtp_tls %q is unknown: use starttls, tls or none", m.Security)
	}
	if _, err := parseFrom(m.From); err != nil && !httprule.HasPlaceholder(m.From) {
		return fmt.Errorf("from %q is not an email address: %w", m.From, err)
	}
	if (m.Username == "") != (m.Password == "") {
		return errors.New("smtp_username and smtp_password go together")
	}
	return nil
}

// parseFrom returns the bare address of a From value.
func parseFrom(from string) (string, error) {
	if strings.ContainsAny(from, "\r\n") {
		return "", errors.New("it holds a line break")
	}
	a, err := netmail.ParseAddress(from)
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
func (m *SMTPMailer) Send(ctx context.Context, msg Message) error {
	to := msg.To
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
	if _, err := wc.Write(buildMessage(m.From, msg)); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	return c.Quit()
}

// buildMessage is an RFC 5322 message with CRLF line ends: text alone, or
// multipart/alternative with the text part first and the HTML part last
// (the one clients prefer).
func buildMessage(from string, m Message) []byte {
	var b bytes.Buffer
	domain := "localhost"
	if f, err := parseFrom(from); err == nil {
		domain = f[strings.LastIndexByte(f, '@')+1:]
	}
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from)
	header("To", m.To)
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", time.Now().UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+uniqueID()+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Auto-Submitted", "auto-generated")
	crlf := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	}
	if m.HTML == "" {
		header("Content-Type", "text/plain; charset=utf-8")
		header("Content-Transfer-Encoding", "8bit")
		b.WriteString("\r\n")
		b.WriteString(crlf(m.Text))
		return b.Bytes()
	}
	boundary := "=_" + uniqueID()
	header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	part := func(contentType, body string) {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, contentType)
		q := quotedprintable.NewWriter(&b)
		_, _ = q.Write([]byte(crlf(body)))
		_ = q.Close()
		b.WriteString("\r\n")
	}
	part("text/plain", m.Text)
	part("text/html", m.HTML)
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

// uniqueID is 256 random bits, base64url: a Message-ID's local part, a
// MIME boundary.
func uniqueID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}
