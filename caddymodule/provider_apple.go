package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(AppleProvider{})
}

// AppleProvider is provider apple: Sign in with Apple (on the web: a Services ID, and a key the gateway signs client secrets with). Its options are provider.AppleConfig's.
type AppleProvider struct {
	provider.AppleConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (AppleProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("apple", func() caddy.Module { return new(AppleProvider) })
}

// Provision replaces placeholders and builds the provider.
func (a *AppleProvider) Provision(caddy.Context) (err error) {
	a.oauth, err = provisionOAuth(&a.Common, &a.AppleConfig, provider.NewApple)
	return err
}

// Validate checks the options.
func (a *AppleProvider) Validate() error { return a.AppleConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (a *AppleProvider) OAuthProvider() provider.OAuth { return a.oauth }

func (a *AppleProvider) providerName() string { return nameOr(a.Name, "apple") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider apple [<name>] {
//	    client_id             <services-id>  # e.g. com.example.web
//	    team_id               <team-id>
//	    key_id                <key-id>
//	    private_key_file      <path>         # the .p8 file; or:
//	    private_key           <pem>          # e.g. {env.APPLE_PRIVATE_KEY}
//	    allowed_email_domains <domain...>
//	    admission_ttl         <duration>
//	    scopes                <scope...>     # default name email
//	    redirect_url          <url>
//	    auth_url              <url>
//	    token_url             <url>
//	    jwks_url              <url>
//	    label                 <text>
//	}
func (a *AppleProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &a.Common, &a.AppleConfig, a)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*AppleProvider)(nil)
	_ caddy.Validator       = (*AppleProvider)(nil)
	_ caddyfile.Unmarshaler = (*AppleProvider)(nil)
	_ OAuthProvider         = (*AppleProvider)(nil)
	_ builtinProvider       = (*AppleProvider)(nil)
)
