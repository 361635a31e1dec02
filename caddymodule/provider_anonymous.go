package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

func init() {
	caddy.RegisterModule(AnonymousProvider{})
}

// AnonymousProvider is provider anonymous: "Continue as guest", a user
// with no email and no account, signed up in place when it later signs in
// with a method whose account is new.
type AnonymousProvider struct {
	// GuestTTL is how long a guest may go unused before it is removed
	// with its sessions, at least 1m. Default: 720h (30 days).
	GuestTTL caddy.Duration `json:"guest_ttl,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (AnonymousProvider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  ProvidersNamespace + "." + signin.ProviderAnonymous,
		New: func() caddy.Module { return new(AnonymousProvider) },
	}
}

func (a *AnonymousProvider) config() signin.AnonymousConfig {
	return signin.AnonymousConfig{TTL: time.Duration(a.GuestTTL)}
}

// Validate checks the options.
func (a *AnonymousProvider) Validate() error { return a.config().Validate() }

func (a *AnonymousProvider) addTo(cfg *signin.Config) {
	c := a.config()
	cfg.Anonymous = &c
}

func (a *AnonymousProvider) providerName() string { return signin.ProviderAnonymous }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider anonymous [{
//	    guest_ttl <duration>   # unused guests are removed; default 720h
//	}]
func (a *AnonymousProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	typ, err := unmarshalBuiltinName(d)
	if err != nil {
		return err
	}
	err = unmarshalProviderBlock(d, typ, func(d *caddyfile.Dispenser, sub string) (bool, error) {
		if sub == "guest_ttl" {
			return true, durationArg(d, &a.GuestTTL)
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	return validated(d, a)
}

// Interface guards
var (
	_ caddy.Validator       = (*AnonymousProvider)(nil)
	_ caddyfile.Unmarshaler = (*AnonymousProvider)(nil)
	_ builtinProvider       = (*AnonymousProvider)(nil)
	_ builtinMethod         = (*AnonymousProvider)(nil)
)
