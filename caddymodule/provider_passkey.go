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
	return caddy.ModuleInfo{
		ID:  ProvidersNamespace + "." + signin.ProviderPasskey,
		New: func() caddy.Module { return new(PasskeyProvider) },
	}
}

// Validate checks the options.
func (p *PasskeyProvider) Validate() error { return p.Config.Validate() }

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
	typ, err := unmarshalBuiltinName(d)
	if err != nil {
		return err
	}
	err = unmarshalProviderBlock(d, typ, func(d *caddyfile.Dispenser, sub string) (bool, error) {
		switch sub {
		case "user_verification":
			return true, oneArg(d, &p.UserVerification)
		case "attachment":
			return true, oneArg(d, &p.Attachment)
		case "origins":
			p.Origins = d.RemainingArgs()
			if len(p.Origins) == 0 {
				return true, d.ArgErr()
			}
			return true, nil
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
	_ caddy.Validator       = (*PasskeyProvider)(nil)
	_ caddyfile.Unmarshaler = (*PasskeyProvider)(nil)
	_ builtinProvider       = (*PasskeyProvider)(nil)
	_ builtinMethod         = (*PasskeyProvider)(nil)
)
