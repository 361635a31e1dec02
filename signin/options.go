package signin

import (
	"github.com/convex-auth/caddy-convex-auth/provider"
)

// The options of the built-in methods as a configuration file names them
// (JSON, and the Caddyfile's provider blocks): each makes its method's
// configuration, and Validate checks it, naming the option at fault.

// PasswordOptions are provider password's options.
type PasswordOptions struct {
	// MinLength is the shortest password accepted at sign-up, 1 to 256.
	// Default: 8.
	MinLength int `json:"min_length,omitempty"`
	// MaxAttempts is how many failed sign-ins an account may have per
	// hour. Default: 10.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// VerifyEmail is off, optional or required: optional mails a
	// verification link at sign-up; required lets nobody sign in before
	// using it. Default: optional when mail is configured, off when not.
	VerifyEmail string `json:"verify_email,omitempty"`
	// VerifyTTL is how long a verification link works, 1m to 168h; under
	// required, a sign-up not verified by then is forgotten. Default: 24h.
	VerifyTTL provider.Duration `json:"verify_ttl,omitempty"`
	// ResetTTL is how long a password-reset link works, 1m to 24h.
	// Default: 15m.
	ResetTTL provider.Duration `json:"reset_ttl,omitempty"`
	// Admission: allowed_email_domains (with verify_email required) and
	// admission_ttl.
	provider.Admission
}

// Config is the method's configuration.
func (o PasswordOptions) Config() PasswordConfig {
	return PasswordConfig{MinLength: o.MinLength, MaxAttempts: o.MaxAttempts, VerifyEmail: o.VerifyEmail,
		VerifyTTL: o.VerifyTTL.D(), ResetTTL: o.ResetTTL.D(), Admission: o.Admission}
}

// Validate checks the options.
func (o PasswordOptions) Validate() error { return o.Config().Validate() }

// EmailOptions are provider email's own options (the mail it sends is the
// email block's).
type EmailOptions struct {
	// Mode is link or code: link mails a link and its code; code mails
	// only a code typed on the page. Default: link.
	Mode string `json:"mode,omitempty"`
	// LinkTTL is how long a link or code works, 1m to 24h. Default: 15m.
	LinkTTL provider.Duration `json:"link_ttl,omitempty"`
	// Admission: allowed_email_domains (no link goes to another domain)
	// and admission_ttl.
	provider.Admission
}

// Config is the method's configuration.
func (o EmailOptions) Config() EmailConfig {
	return EmailConfig{Mode: o.Mode, LinkTTL: o.LinkTTL.D(), Admission: o.Admission}
}

// AnonymousOptions are provider anonymous's options.
type AnonymousOptions struct {
	// GuestTTL is how long a guest may go unused before it is removed
	// with its sessions, at least 1m. Default: 720h (30 days).
	GuestTTL provider.Duration `json:"guest_ttl,omitempty"`
}

// Config is the method's configuration.
func (o AnonymousOptions) Config() AnonymousConfig { return AnonymousConfig{TTL: o.GuestTTL.D()} }

// Validate checks the options.
func (o AnonymousOptions) Validate() error { return o.Config().Validate() }
