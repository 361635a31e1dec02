package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

func init() {
	caddy.RegisterModule(PasswordProvider{})
}

// PasswordProvider is provider password: sign-up and sign-in by email
// and password (argon2id), with email verification and reset when mail is
// set up (the email block).
type PasswordProvider struct {
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
	VerifyTTL caddy.Duration `json:"verify_ttl,omitempty"`
	// ResetTTL is how long a password-reset link works, 1m to 24h.
	// Default: 15m.
	ResetTTL caddy.Duration `json:"reset_ttl,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (PasswordProvider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  ProvidersNamespace + "." + signin.ProviderPassword,
		New: func() caddy.Module { return new(PasswordProvider) },
	}
}

func (p *PasswordProvider) config() signin.PasswordConfig {
	return signin.PasswordConfig{MinLength: p.MinLength, MaxAttempts: p.MaxAttempts, VerifyEmail: p.VerifyEmail,
		VerifyTTL: time.Duration(p.VerifyTTL), ResetTTL: time.Duration(p.ResetTTL)}
}

// Validate checks the options.
func (p *PasswordProvider) Validate() error { return p.config().Validate() }

func (p *PasswordProvider) addTo(cfg *signin.Config) {
	c := p.config()
	cfg.Password = &c
}

func (p *PasswordProvider) providerName() string { return signin.ProviderPassword }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider password [{
//	    min_length    <n>
//	    max_attempts  <n>
//	    verify_email  off|optional|required
//	    verify_ttl    <duration>
//	    reset_ttl     <duration>
//	}]
func (p *PasswordProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	typ, err := unmarshalBuiltinName(d)
	if err != nil {
		return err
	}
	err = unmarshalProviderBlock(d, typ, func(d *caddyfile.Dispenser, sub string) (bool, error) {
		switch sub {
		case "min_length":
			return true, positiveIntArg(d, &p.MinLength)
		case "max_attempts":
			return true, positiveIntArg(d, &p.MaxAttempts)
		case "verify_email":
			return true, oneArg(d, &p.VerifyEmail)
		case "verify_ttl":
			return true, durationArg(d, &p.VerifyTTL)
		case "reset_ttl":
			return true, durationArg(d, &p.ResetTTL)
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	return validated(d, p)
}

// Interface guards
var (
	_ caddy.Validator       = (*PasswordProvider)(nil)
	_ caddyfile.Unmarshaler = (*PasswordProvider)(nil)
	_ builtinProvider       = (*PasswordProvider)(nil)
	_ builtinMethod         = (*PasswordProvider)(nil)
)
