package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

func init() {
	caddy.RegisterModule(EmailProvider{})
}

// EmailProvider is provider email: sign-in by a mailed link and its code,
// or by a code alone. Mail goes out as the email block says; the older
// form sets the SMTP options here instead.
type EmailProvider struct {
	// Mode is link or code: link mails a link and its code; code mails
	// only a code typed on the page. Default: link.
	Mode string `json:"mode,omitempty"`
	// LinkTTL is how long a link or code works, 1m to 24h. Default: 15m.
	LinkTTL caddy.Duration `json:"link_ttl,omitempty"`

	// SMTPOptions are the older form of the email block (smtp_host,
	// smtp_port, smtp_tls, smtp_username, smtp_password, from): required
	// unless the email block sets mail up. Default: none.
	SMTPOptions
	// MaxSends is how many links one address gets per hour, with the
	// older form. Default: 5.
	MaxSends int `json:"max_sends,omitempty"`

	mailer *mail.SMTPMailer // the older form's, once provisioned
}

// CaddyModule returns the Caddy module information.
func (EmailProvider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  ProvidersNamespace + "." + signin.ProviderEmail,
		New: func() caddy.Module { return new(EmailProvider) },
	}
}

// ownMail reports whether the provider sets up its own mail (the older
// form).
func (e *EmailProvider) ownMail() bool { return e.SMTPOptions != (SMTPOptions{}) || e.MaxSends != 0 }

// Provision builds the older form's mailer, its placeholders replaced.
func (e *EmailProvider) Provision(caddy.Context) error {
	if e.ownMail() {
		e.mailer = e.SMTPOptions.mailer(true)
	}
	return nil
}

// Validate checks the options.
func (e *EmailProvider) Validate() error {
	if err := (signin.EmailConfig{Mode: e.Mode, LinkTTL: time.Duration(e.LinkTTL), MaxSends: e.MaxSends}).Validate(); err != nil {
		return err
	}
	if e.mailer != nil {
		return e.mailer.Validate()
	}
	if e.ownMail() {
		return e.SMTPOptions.mailer(false).Validate()
	}
	return nil
}

func (e *EmailProvider) addTo(cfg *signin.Config) {
	cfg.Email = &signin.EmailConfig{Mode: e.Mode, LinkTTL: time.Duration(e.LinkTTL)}
	if e.mailer != nil {
		cfg.Email.Mailer, cfg.Email.MaxSends = e.mailer, e.MaxSends
	}
}

func (e *EmailProvider) providerName() string { return signin.ProviderEmail }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider email [{
//	    mode          link|code
//	    link_ttl      <duration>
//	    # the older form, without an email block:
//	    smtp_host     <host>
//	    smtp_port     <port>
//	    smtp_tls      starttls|tls|none
//	    smtp_username <username>
//	    smtp_password <password>    # e.g. {env.SMTP_PASSWORD}
//	    from          <address>
//	    max_sends     <n>
//	}]
func (e *EmailProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	typ, err := unmarshalBuiltinName(d)
	if err != nil {
		return err
	}
	err = unmarshalProviderBlock(d, typ, func(d *caddyfile.Dispenser, sub string) (bool, error) {
		switch sub {
		case "mode":
			return true, oneArg(d, &e.Mode)
		case "link_ttl":
			return true, durationArg(d, &e.LinkTTL)
		case "max_sends":
			return true, positiveIntArg(d, &e.MaxSends)
		}
		return e.SMTPOptions.unmarshalOption(d, sub)
	})
	if err != nil {
		return err
	}
	return validated(d, e)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*EmailProvider)(nil)
	_ caddy.Validator       = (*EmailProvider)(nil)
	_ caddyfile.Unmarshaler = (*EmailProvider)(nil)
	_ builtinProvider       = (*EmailProvider)(nil)
	_ builtinMethod         = (*EmailProvider)(nil)
)
