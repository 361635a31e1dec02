package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

func init() {
	caddy.RegisterModule(AnonymousProvider{})
}

// AnonymousProvider is provider anonymous: "Continue as guest", a user
// with no email and no account, signed up in place when it later signs in
// with a method whose account is new. Its options are
// signin.AnonymousOptions.
type AnonymousProvider struct {
	signin.AnonymousOptions
}

// CaddyModule returns the Caddy module information.
func (AnonymousProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo(signin.ProviderAnonymous, func() caddy.Module { return new(AnonymousProvider) })
}

func (a *AnonymousProvider) addTo(cfg *signin.Config) {
	c := a.Config()
	cfg.Anonymous = &c
}

func (a *AnonymousProvider) providerName() string { return signin.ProviderAnonymous }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider anonymous [{
//	    guest_ttl <duration>   # unused guests are removed; default 720h
//	}]
func (a *AnonymousProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalBuiltin(d, &a.AnonymousOptions, a)
}

// Interface guards
var (
	_ caddy.Validator       = (*AnonymousProvider)(nil)
	_ caddyfile.Unmarshaler = (*AnonymousProvider)(nil)
	_ builtinProvider       = (*AnonymousProvider)(nil)
	_ builtinMethod         = (*AnonymousProvider)(nil)
)
