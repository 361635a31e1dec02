package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

func init() {
	caddy.RegisterModule(PasswordProvider{})
}

// PasswordProvider is provider password: sign-up and sign-in by email
// and password (argon2id), with email verification and reset when mail is
// set up (the email block). Its options are signin.PasswordOptions.
type PasswordProvider struct {
	signin.PasswordOptions
}

// CaddyModule returns the Caddy module information.
func (PasswordProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo(signin.ProviderPassword, func() caddy.Module { return new(PasswordProvider) })
}

func (p *PasswordProvider) addTo(cfg *signin.Config) {
	c := p.Config()
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
//	    allowed_email_domains <domain...>   # needs verify_email required, the default then
//	    admission_ttl <duration>
//	}]
func (p *PasswordProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalBuiltin(d, &p.PasswordOptions, p)
}

// Interface guards
var (
	_ caddy.Validator       = (*PasswordProvider)(nil)
	_ caddyfile.Unmarshaler = (*PasswordProvider)(nil)
	_ builtinProvider       = (*PasswordProvider)(nil)
	_ builtinMethod         = (*PasswordProvider)(nil)
)
