package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

func init() {
	caddy.RegisterModule(EmailProvider{})
}

// EmailProvider is provider email: sign-in by a mailed link and its code,
// or by a code alone. Its options are signin.EmailOptions; mail goes out
// as the email block says, or, in the older form, as the SMTP options set
// here say.
type EmailProvider struct {
	signin.EmailOptions

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
	return oauthModuleInfo(signin.ProviderEmail, func() caddy.Module { return new(EmailProvider) })
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
	c := e.Config()
	c.MaxSends = e.MaxSends
	if err := c.Validate(); err != nil {
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
	c := e.Config()
	if e.mailer != nil {
		c.Mailer, c.MaxSends = e.mailer, e.MaxSends
	}
	cfg.Email = &c
}

func (e *EmailProvider) providerName() string { return signin.ProviderEmail }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider email [{
//	    mode          link|code
//	    link_ttl      <duration>
//	    allowed_email_domains <domain...>   # no link goes to another domain
//	    admission_ttl <duration>
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
	return unmarshalBuiltin(d, e, e)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*EmailProvider)(nil)
	_ caddy.Validator       = (*EmailProvider)(nil)
	_ caddyfile.Unmarshaler = (*EmailProvider)(nil)
	_ builtinProvider       = (*EmailProvider)(nil)
	_ builtinMethod         = (*EmailProvider)(nil)
)
