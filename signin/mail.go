package signin

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"

	"go.uber.org/zap"
)

// Mail kinds: each is a pair of templates, <kind>.txt and <kind>.html.
const (
	MailSignInLink = "signin_link" // a magic link and its code
	MailSignInCode = "signin_code" // a code only (provider email { mode code })
	MailVerify     = "verify"      // email verification after a password sign-up
	MailReset      = "reset"       // password reset
)

var mailKinds = []string{MailSignInLink, MailSignInCode, MailVerify, MailReset}

//go:embed templates/mail
var builtinMail embed.FS

// MailConfig is the one mail setup every provider uses: magic links,
// codes, verification and reset.
type MailConfig struct {
	// Mailer sends the mail. Required.
	Mailer Mailer
	// SiteName names the site in every mail's subject and body. Default:
	// the site's host, e.g. app.example.com.
	SiteName string
	// TemplatesDir holds templates that replace the built-in ones, file by
	// file: <kind>.txt (text/template; its "subject" template is the
	// subject) and <kind>.html (html/template, with layout.html), for the
	// kinds signin_link, signin_code, verify and reset. Default: "", the
	// built-in templates.
	TemplatesDir string
	// MaxSends is how many mails one address gets per SendWindow, all
	// kinds together. Default: 5.
	MaxSends int
	// SendWindow. Default: 1h.
	SendWindow time.Duration
}

// Message is one mail: a text part and, when HTML is set, an HTML
// alternative.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer sends one mail.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// MailData is what the mail templates get.
type MailData struct {
	// Kind is signin_link, signin_code, verify or reset.
	Kind string
	// SiteName is MailConfig.SiteName; Site is the site's host.
	SiteName string
	Site     string
	// Email is the recipient.
	Email string
	// Link is the magic, verification or reset link; empty for
	// signin_code.
	Link string
	// Code is the code to type on the page.
	Code string
	// Expires says in words how long the link and code work.
	Expires string
}

// mailTemplates are the parsed templates of every kind.
type mailTemplates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

var mailFuncs = map[string]any{
	// dict builds a map for a sub-template: dict "Link" .Link "Label" "Sign in".
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("dict needs key and value pairs")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, errors.New("dict keys must be strings")
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
}

// ParseMailTemplates reads the built-in mail templates, each replaced by a
// file of the same name in dir when there is one ("" : built-in only),
// and checks that every kind renders.
func ParseMailTemplates(dir string) (*mailTemplates, error) {
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("signin: mail templates: %w", err)
			}
		}
		b, err := builtinMail.ReadFile("templates/mail/" + name)
		return string(b), err
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("signin: mail templates %s is not a readable directory", dir)
		}
	}
	layout, err := read("layout.html")
	if err != nil {
		return nil, err
	}
	t := &mailTemplates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	sample := MailData{SiteName: "Example", Site: "example.com", Email: "ada@example.com", Link: "https://example.com/x", Code: "12345678", Expires: "15 minutes"}
	for _, kind := range mailKinds {
		txt, err := read(kind + ".txt")
		if err != nil {
			return nil, err
		}
		tt, err := texttemplate.New(kind).Funcs(mailFuncs).Parse(txt)
		if err != nil {
			return nil, fmt.Errorf("signin: mail template %s.txt: %w", kind, err)
		}
		html, err := read(kind + ".html")
		if err != nil {
			return nil, err
		}
		ht, err := htmltemplate.New(kind).Funcs(mailFuncs).Parse(layout)
		if err == nil {
			ht, err = ht.Parse(html)
		}
		if err != nil {
			return nil, fmt.Errorf("signin: mail template %s.html: %w", kind, err)
		}
		t.text[kind], t.html[kind] = tt, ht
		sample.Kind = kind
		if _, err := t.render(sample); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// render builds the mail of d.Kind.
func (t *mailTemplates) render(d MailData) (Message, error) {
	var subject, text, html bytes.Buffer
	tt, ht := t.text[d.Kind], t.html[d.Kind]
	if tt == nil || ht == nil {
		return Message{}, fmt.Errorf("signin: no mail template of kind %q", d.Kind)
	}
	if tt.Lookup("subject") == nil {
		return Message{}, fmt.Errorf("signin: mail template %s.txt defines no \"subject\" template", d.Kind)
	}
	if err := tt.ExecuteTemplate(&subject, "subject", d); err != nil {
		return Message{}, fmt.Errorf("signin: mail template %s.txt: %w", d.Kind, err)
	}
	if err := tt.Execute(&text, d); err != nil {
		return Message{}, fmt.Errorf("signin: mail template %s.txt: %w", d.Kind, err)
	}
	if err := ht.Execute(&html, d); err != nil {
		return Message{}, fmt.Errorf("signin: mail template %s.html: %w", d.Kind, err)
	}
	s := strings.Join(strings.Fields(subject.String()), " ")
	if s == "" {
		return Message{}, fmt.Errorf("signin: mail template %s.txt renders an empty subject", d.Kind)
	}
	return Message{To: d.Email, Subject: s, Text: text.String(), HTML: html.String()}, nil
}

func (c *MailConfig) fill() error {
	if c.Mailer == nil {
		return errors.New("signin: mail needs a mailer (smtp_host and from)")
	}
	if c.MaxSends == 0 {
		c.MaxSends = DefaultMaxSends
	}
	if c.SendWindow == 0 {
		c.SendWindow = DefaultSendWindow
	}
	if c.MaxSends < 1 || c.SendWindow < time.Second {
		return errors.New("signin: email max_sends must be at least 1 and the window at least 1s")
	}
	return nil
}

// sendLimited counts a mail to email against the per-client, global and
// per-address send limits; a refusal is answered through again.
func (s *Service) sendLimited(w http.ResponseWriter, r *http.Request, flow, email string, again func(status int, code string)) bool {
	if s.limited(w, r, LimitEmailSend, LimitGlobalEmailSend, again) {
		return true
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	m := s.cfg.Mail
	sends := rateLimit{flow: flow, key: sendRateKey + email, max: m.MaxSends, window: m.SendWindow,
		reason: "too many mails sent to the address", code: "too_many_links"}
	return s.overLimit(ctx, sends, again)
}

// mail renders and sends one mail; the error is logged by the caller's
// rule (never with the link or code).
func (s *Service) mail(ctx context.Context, kind, to, link, code string, ttl time.Duration) error {
	msg, err := s.mailTemplates.render(MailData{Kind: kind, SiteName: s.siteName, Site: s.siteHost(), Email: to, Link: link, Code: code, Expires: humanDuration(ttl)})
	if err != nil {
		s.logger.Error("a mail template failed", zap.String("kind", kind), zap.Error(err))
		return err
	}
	return s.cfg.Mail.Mailer.Send(ctx, msg)
}

func (s *Service) siteHost() string {
	return strings.TrimPrefix(strings.TrimPrefix(s.cfg.Origin, "https://"), "http://")
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
	header("Message-ID", "<"+randomToken()+"@"+domain+">")
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
	boundary := "=_" + randomToken()
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
