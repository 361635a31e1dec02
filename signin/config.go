package signin

import (
	"errors"
	"fmt"
	"time"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/provider"
)

// The options of the built-in methods (password, email, guests) and of the
// mail they send. Each Validate checks the options that are set, with no
// defaults filled in, and names the option at fault; the caller says which
// provider it belongs to. fill sets the defaults and validates.

// Password defaults. The attempt limit is Convex Auth's: 10 failed
// attempts per account per hour.
const (
	DefaultPasswordMinLength = 8
	// MaxPasswordLength bounds what is hashed.
	MaxPasswordLength    = 256
	DefaultMaxAttempts   = 10
	DefaultAttemptWindow = time.Hour
)

// PasswordConfig configures sign-up and sign-in by email and password.
type PasswordConfig struct {
	// MinLength is the shortest password accepted at sign-up, in
	// characters. Default: 8.
	MinLength int
	// MaxAttempts is how many failed sign-ins an account may have per
	// AttemptWindow; the next is refused, right password or not, until the
	// window ends. Default: 10.
	MaxAttempts int
	// AttemptWindow. Default: 1h.
	AttemptWindow time.Duration
	// Argon2 are the hashing costs of new passwords. Default:
	// DefaultArgon2Params. Stored hashes carry their own.
	Argon2 Argon2Params
	// VerifyEmail is VerifyOff, VerifyOptional (sign-up mails a
	// verification link; the user may sign in before using it) or
	// VerifyRequired (nobody signs in before verifying). Default:
	// optional when mail is configured, off when it is not.
	VerifyEmail string
	// VerifyTTL is how long a verification link works. Under required, a
	// sign-up not verified by then is forgotten (no user is created before
	// verification), and the address may sign up again. Default: 24h.
	VerifyTTL time.Duration
	// ResetTTL is how long a password-reset link works. Default: 15m.
	ResetTTL time.Duration
	// Admission admits only verified addresses at its domains (it needs
	// VerifyRequired), for at most its TTL. Default: none.
	Admission provider.Admission
}

// Email verification modes.
const (
	VerifyOff      = "off"
	VerifyOptional = "optional"
	VerifyRequired = "required"
)

// Defaults of the verification and reset links.
const (
	DefaultVerifyTTL = 24 * time.Hour
	MaxVerifyTTL     = 7 * 24 * time.Hour
	DefaultResetTTL  = 15 * time.Minute
)

// Validate checks the options that are set.
func (c PasswordConfig) Validate() error {
	switch c.VerifyEmail {
	case "", VerifyOff, VerifyOptional, VerifyRequired:
	default:
		return fmt.Errorf("verify_email %q is unknown: use off, optional or required", c.VerifyEmail)
	}
	if ttl := c.VerifyTTL; ttl != 0 && (ttl < time.Minute || ttl > MaxVerifyTTL) {
		return fmt.Errorf("verify_ttl %s is out of range: use 1m to %s", ttl, MaxVerifyTTL)
	}
	if ttl := c.ResetTTL; ttl != 0 && (ttl < time.Minute || ttl > MaxLinkTTL) {
		return fmt.Errorf("reset_ttl %s is out of range: use 1m to %s", ttl, MaxLinkTTL)
	}
	if c.MinLength < 0 || c.MinLength > MaxPasswordLength {
		return fmt.Errorf("min_length %d is out of range: use 1 to %d (8 or more is wise)", c.MinLength, MaxPasswordLength)
	}
	if c.MaxAttempts < 0 || c.AttemptWindow < 0 || c.AttemptWindow != 0 && c.AttemptWindow < time.Second {
		return errors.New("max_attempts must be at least 1 and the window at least 1s")
	}
	if len(c.Admission.AllowedEmailDomains) > 0 && c.VerifyEmail != "" && c.VerifyEmail != VerifyRequired {
		return errors.New("allowed_email_domains needs verify_email required: an address nobody proved is no member of a domain")
	}
	return provider.ValidateAdmission(c.Admission)
}

// fill sets the defaults; mail says whether mail is set up.
func (c *PasswordConfig) fill(mail bool) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.VerifyEmail == "" {
		c.VerifyEmail = VerifyOff
		if mail {
			c.VerifyEmail = VerifyOptional
		}
		if len(c.Admission.AllowedEmailDomains) > 0 {
			c.VerifyEmail = VerifyRequired
		}
	}
	if c.VerifyTTL == 0 {
		c.VerifyTTL = DefaultVerifyTTL
	}
	if c.ResetTTL == 0 {
		c.ResetTTL = DefaultResetTTL
	}
	if c.MinLength == 0 {
		c.MinLength = DefaultPasswordMinLength
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.AttemptWindow == 0 {
		c.AttemptWindow = DefaultAttemptWindow
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2Params
	}
	return nil
}

// Magic-link defaults.
const (
	DefaultLinkTTL = 15 * time.Minute
	// MaxLinkTTL keeps a link from outliving its purpose.
	MaxLinkTTL = 24 * time.Hour
	// DefaultMaxSends is how many links one address gets per SendWindow.
	DefaultMaxSends   = 5
	DefaultSendWindow = time.Hour
)

// Email sign-in modes.
const (
	EmailModeLink = "link" // a link, and its code for another browser
	EmailModeCode = "code" // a code only, typed on the page
)

// EmailConfig configures sign-in by email: magic links or codes.
type EmailConfig struct {
	// Mode is EmailModeLink or EmailModeCode. Default: link.
	Mode string
	// Mailer sends the mail when Config.Mail is nil (the older form,
	// provider email { smtp_... }). Default: nil, Config.Mail's.
	Mailer mail.Mailer
	// LinkTTL is how long a link or code works. Default: 15m.
	LinkTTL time.Duration
	// MaxSends and SendWindow are Config.Mail's when Config.Mail is nil.
	MaxSends   int
	SendWindow time.Duration
	// Admission admits only addresses at its domains (no link goes
	// elsewhere), for at most its TTL. Default: none.
	Admission provider.Admission
}

// Validate checks the options that are set.
func (c EmailConfig) Validate() error {
	if c.Mode != "" && c.Mode != EmailModeLink && c.Mode != EmailModeCode {
		return fmt.Errorf("mode %q is unknown: use link or code", c.Mode)
	}
	if ttl := c.LinkTTL; ttl != 0 && (ttl < time.Minute || ttl > MaxLinkTTL) {
		return fmt.Errorf("link_ttl %s is out of range: use 1m to %s", ttl, MaxLinkTTL)
	}
	if c.MaxSends < 0 {
		return errors.New("max_sends must be at least 1")
	}
	return provider.ValidateAdmission(c.Admission)
}

func (c *EmailConfig) fill() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.LinkTTL == 0 {
		c.LinkTTL = DefaultLinkTTL
	}
	if c.Mode == "" {
		c.Mode = EmailModeLink
	}
	return nil
}

// DefaultGuestTTL is how long a guest may go unused before it is removed
// with its sessions.
const DefaultGuestTTL = 30 * 24 * time.Hour

// AnonymousConfig configures "Continue as guest": a user with no email and
// no account, signed up in place when it later signs in with a method
// whose account is new.
type AnonymousConfig struct {
	// TTL is how long a guest may go unused (no token minted for it)
	// before the store removes it and its sessions. Default: 30 days.
	TTL time.Duration
}

// Validate checks the options that are set.
func (c AnonymousConfig) Validate() error {
	if c.TTL != 0 && c.TTL < time.Minute {
		return fmt.Errorf("guest_ttl %s is too short: use at least 1m (default 720h)", c.TTL)
	}
	return nil
}

func (c *AnonymousConfig) fill() error {
	if c.TTL == 0 {
		c.TTL = DefaultGuestTTL
	}
	return c.Validate()
}

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
	// kinds signin_link, signin_code, verify, reset, account_changed,
	// signup_exists and new_device. Default: "", the
	// built-in templates.
	TemplatesDir string
	// MaxSends is how many mails one address gets per SendWindow, all
	// kinds together. Default: 5.
	MaxSends int
	// SendWindow. Default: 1h.
	SendWindow time.Duration
	// QuietNewDevices sends no mail when an account is signed in to from
	// a browser it has not seen (while it has seen another). Default:
	// false, the owner is told.
	QuietNewDevices bool
}

func (c *MailConfig) fill() error {
	if c.Mailer == nil {
		return errors.New("mail needs a mailer (smtp_host and from)")
	}
	if c.MaxSends == 0 {
		c.MaxSends = DefaultMaxSends
	}
	if c.SendWindow == 0 {
		c.SendWindow = DefaultSendWindow
	}
	if c.MaxSends < 1 || c.SendWindow < time.Second {
		return errors.New("email max_sends must be at least 1 and the window at least 1s")
	}
	return nil
}

// CheckMail checks that the methods that send mail have it: email
// sign-in always, password sign-in when it verifies addresses. haveMail
// says whether mail is set up.
func CheckMail(password *PasswordConfig, email *EmailConfig, haveMail bool) error {
	if haveMail {
		return nil
	}
	if email != nil {
		return errors.New("provider email needs mail: email needs smtp_host and from: set them in an email { ... } block")
	}
	if password != nil && len(password.Admission.AllowedEmailDomains) > 0 {
		return errors.New("provider password: allowed_email_domains needs mail, to verify each address: add an email { smtp_host ... from ... } block")
	}
	if password != nil && (password.VerifyEmail == VerifyOptional || password.VerifyEmail == VerifyRequired) {
		return fmt.Errorf("provider password: verify_email %s needs mail: add an email { smtp_host ... from ... } block", password.VerifyEmail)
	}
	return nil
}
