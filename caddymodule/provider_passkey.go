package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/passkey"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

func init() {
	caddy.RegisterModule(PasskeyProvider{})
}

// PasskeyProvider is provider passkey: "Sign in with a passkey" (a
// discoverable WebAuthn credential, offered in the email field's autofill
// too), passkeys added from the account page, and a passkey as the second
// factor. The relying party's ID is the issuer's host; the ceremonies run
// on the issuer's origin and Origins.
type PasskeyProvider struct {
	passkey.Config
}

// CaddyModule returns the Caddy module information.
func (PasskeyProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo(signin.ProviderPasskey, func() caddy.Module { return new(PasskeyProvider) })
}

func (p *PasskeyProvider) addTo(cfg *signin.Config) {
	c := p.Config
	cfg.Passkey = &c
}

func (p *PasskeyProvider) providerName() string { return signin.ProviderPasskey }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider passkey [{
//	    user_verification preferred|required|discouraged   # default preferred
//	    origins           <origin...>                      # besides the issuer's
//	    attachment        platform|cross-platform          # default: either
//	}]
func (p *PasskeyProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalBuiltin(d, &p.Config, p)
}

// Interface guards
var (
	_ caddy.Validator       = (*PasskeyProvider)(nil)
	_ caddyfile.Unmarshaler = (*PasskeyProvider)(nil)
	_ builtinProvider       = (*PasskeyProvider)(nil)
	_ builtinMethod         = (*PasskeyProvider)(nil)
)
