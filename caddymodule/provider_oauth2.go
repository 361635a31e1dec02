package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(OAuth2Provider{})
}

// OAuth2Provider is provider oauth2: any OAuth 2.0 server with a user-info endpoint, read through a claim mapping. Its options are provider.OAuth2Config's.
type OAuth2Provider struct {
	provider.OAuth2Config

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (OAuth2Provider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("oauth2", func() caddy.Module { return new(OAuth2Provider) })
}

// Provision replaces placeholders and builds the provider.
func (o *OAuth2Provider) Provision(caddy.Context) (err error) {
	o.oauth, err = provisionOAuth(&o.Common, &o.OAuth2Config, provider.NewOAuth2)
	return err
}

// Validate checks the options.
func (o *OAuth2Provider) Validate() error { return o.OAuth2Config.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (o *OAuth2Provider) OAuthProvider() provider.OAuth { return o.oauth }

func (o *OAuth2Provider) providerName() string { return nameOr(o.Name, "oauth2") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider oauth2 <name> {
//	    auth_url              <url>          # required
//	    token_url             <url>          # required
//	    userinfo_url          <url>          # required
//	    client_id             <id>
//	    client_secret         <secret>
//	    scopes                <scope...>
//	    claims {
//	        id             <path>            # default sub
//	        email          <path>            # default email
//	        email_verified <path>            # default none: emails unverified
//	        name           <path>            # default name
//	        picture        <path>            # default picture
//	    }
//	    allowed_email_domains <domain...>
//	    admission_ttl         <duration>
//	    redirect_url          <url>
//	    label                 <text>
//	}
func (o *OAuth2Provider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &o.Common, &o.OAuth2Config, o)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*OAuth2Provider)(nil)
	_ caddy.Validator       = (*OAuth2Provider)(nil)
	_ caddyfile.Unmarshaler = (*OAuth2Provider)(nil)
	_ OAuthProvider         = (*OAuth2Provider)(nil)
	_ builtinProvider       = (*OAuth2Provider)(nil)
)
