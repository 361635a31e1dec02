package signin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"go.uber.org/zap"
)

// MailConfig is the one mail setup every provider uses: magic links,
// codes, verification and reset.
type MailConfig struct {
	// Mailer sends the mail. Required.
	Mailer mail.Mailer
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

// sendMail renders and sends one mail; the error is logged by the caller's
// rule (never with the link or code).
func (s *Service) sendMail(ctx context.Context, kind, to, link, code string, ttl time.Duration) error {
	msg, err := s.mailTemplates.Render(mail.Data{Kind: kind, SiteName: s.siteName, Site: s.siteHost(), Email: to, Link: link, Code: code, Expires: humanDuration(ttl)})
	if err != nil {
		s.logger.Error("a mail template failed", zap.String("kind", kind), zap.Error(err))
		return err
	}
	return s.cfg.Mail.Mailer.Send(ctx, msg)
}

func (s *Service) siteHost() string {
	return strings.TrimPrefix(strings.TrimPrefix(s.cfg.Origin, "https://"), "http://")
}
