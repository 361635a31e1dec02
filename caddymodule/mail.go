package caddymodule

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// SMTPOptions say where mail goes: the email block's, and provider
// email's older form (without an email block).
type SMTPOptions struct {
	// SMTPHost is the mail server's host name. Required; no default.
	SMTPHost string `json:"smtp_host,omitempty"`
	// SMTPPort is the mail server's port. Default: 587 for starttls, 465
	// for tls, 25 for none.
	SMTPPort int `json:"smtp_port,omitempty"`
	// SMTPTLS is starttls, tls or none. Default: starttls.
	SMTPTLS string `json:"smtp_tls,omitempty"`
	// SMTPUsername authenticates with AUTH PLAIN, over TLS only. Default:
	// none, no authentication; set with smtp_password.
	SMTPUsername string `json:"smtp_username,omitempty"`
	// SMTPPassword goes with smtp_username; use a placeholder such as
	// {env.SMTP_PASSWORD}. Default: none.
	SMTPPassword string `json:"smtp_password,omitempty"`
	// From is the sender, e.g. "Example <login@example.com>". Required; no
	// default.
	From string `json:"from,omitempty"`
}

// mailer builds the SMTP client; replace replaces the placeholders of the
// options that may hold them.
func (o SMTPOptions) mailer(replace bool) *mail.SMTPMailer {
	m := &mail.SMTPMailer{Host: o.SMTPHost, Port: o.SMTPPort, Security: o.SMTPTLS,
		Username: o.SMTPUsername, Password: o.SMTPPassword, From: o.From}
	if replace {
		replacePlaceholders(&m.Host, &m.Username, &m.Password, &m.From)
	}
	return m
}

// unmarshalOption parses the SMTP option sub and reports whether it was
// one.
func (o *SMTPOptions) unmarshalOption(d *caddyfile.Dispenser, sub string) (bool, error) {
	switch sub {
	case "smtp_host":
		return true, oneArg(d, &o.SMTPHost)
	case "smtp_port":
		return true, positiveIntArg(d, &o.SMTPPort)
	case "smtp_tls":
		return true, oneArg(d, &o.SMTPTLS)
	case "smtp_username":
		return true, oneArg(d, &o.SMTPUsername)
	case "smtp_password":
		return true, oneArg(d, &o.SMTPPassword)
	case "from":
		return true, oneArg(d, &o.From)
	}
	return false, nil
}

// MailOptions configure sending mail (the Caddyfile's email block).
type MailOptions struct {
	SMTPOptions
	// SiteName names the site in every mail's subject and body. Default:
	// the issuer's host.
	SiteName string `json:"site_name,omitempty"`
	// Templates is a directory of mail templates that replace the
	// built-in ones file by file (signin_link, signin_code, verify, reset,
	// account_changed, signup_exists, new_device; .txt and .html;
	// layout.html). Default: none, the built-in ones.
	Templates string `json:"templates,omitempty"`
	// MaxSends is how many mails one address gets per hour, all kinds
	// together. Default: 5.
	MaxSends int `json:"max_sends,omitempty"`
	// QuietNewDevices sends no mail for a sign-in from a browser the
	// account has not seen (Caddyfile: new_device_mail off). Default:
	// false, the owner is told.
	QuietNewDevices bool `json:"quiet_new_devices,omitempty"`
}

// check validates the block; its errors name the option at fault.
func (m *MailOptions) check() error {
	if err := m.mailer(false).Validate(); err != nil {
		return err
	}
	if m.MaxSends < 0 {
		return errors.New("max_sends must be at least 1")
	}
	if m.Templates != "" && !httprule.HasPlaceholder(m.Templates) {
		if _, err := mail.ParseTemplates(m.Templates); err != nil {
			return fmt.Errorf("templates: %w", err)
		}
	}
	return nil
}

// config is the mail setup, its placeholders replaced.
func (m *MailOptions) config() (*signin.MailConfig, error) {
	mailer := m.mailer(true)
	if err := mailer.Validate(); err != nil {
		return nil, err
	}
	c := &signin.MailConfig{Mailer: mailer, SiteName: m.SiteName, TemplatesDir: m.Templates, MaxSends: m.MaxSends, QuietNewDevices: m.QuietNewDevices}
	replacePlaceholders(&c.SiteName, &c.TemplatesDir)
	return c, nil
}

// unmarshalMail parses `email { ... }`, the mail setup:
//
//	email {
//	    smtp_host, smtp_port, smtp_tls, smtp_username, smtp_password, from  as in provider email
//	    site_name     <text>
//	    templates     <dir>
//	    max_sends     <n>
//	    new_device_mail on|off
//	}
func (h *Handler) unmarshalMail(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("email takes a block, not %q: email { smtp_host ... from ... }", d.Val())
	}
	m := new(MailOptions)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("email: %s is set more than once: keep one", sub)
		}
		seen[sub] = true
		known, err := m.unmarshalOption(d, sub)
		if !known {
			switch sub {
			case "site_name":
				err = oneArg(d, &m.SiteName)
			case "templates":
				err = oneArg(d, &m.Templates)
			case "max_sends":
				err = positiveIntArg(d, &m.MaxSends)
			case "new_device_mail":
				var v string
				if err = oneArg(d, &v); err == nil && v != "on" && v != "off" {
					err = d.Errf("email new_device_mail %q: use on or off", v)
				}
				m.QuietNewDevices = v == "off"
			default:
				return d.Errf("unknown option %q in email: use smtp_host, smtp_port, smtp_tls, smtp_username, smtp_password, from, site_name, templates, max_sends or new_device_mail", sub)
			}
		}
		if err != nil {
			return err
		}
	}
	if err := m.check(); err != nil {
		return d.Errf("email: %w", err)
	}
	h.signInOptions().Mail = m
	return nil
}
