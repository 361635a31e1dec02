package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(OIDCProvider{})
	caddy.RegisterModule(GoogleProvider{})
}

// OIDCProvider is provider oidc: any OpenID Connect issuer, found by
// discovery. Its options are provider.OIDCConfig's.
type OIDCProvider struct {
	provider.OIDCConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (OIDCProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("oidc", func() caddy.Module { return new(OIDCProvider) })
}

// Provision replaces placeholders and builds the provider.
func (o *OIDCProvider) Provision(caddy.Context) (err error) {
	o.oauth, err = provisionOAuth(&o.Common, &o.OIDCConfig, provider.NewOIDC)
	return err
}

// Validate checks the options.
func (o *OIDCProvider) Validate() error { return o.OIDCConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (o *OIDCProvider) OAuthProvider() provider.OAuth { return o.oauth }

func (o *OIDCProvider) providerName() string { return nameOr(o.Name, "oidc") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider oidc <name> {
//	    issuer                <url>         # required
//	    client_id             <id>
//	    client_secret         <secret>      # e.g. {env.OKTA_CLIENT_SECRET}
//	    allowed_groups        <group...>
//	    groups_claim          <claim>       # default groups
//	    allowed_email_domains <domain...>
//	    admission_ttl         <duration>
//	    scopes                <scope...>
//	    redirect_url          <url>
//	    auth_url              <url>
//	    token_url             <url>
//	    userinfo_url          <url>
//	    jwks_url              <url>
//	    label                 <text>
//	}
func (o *OIDCProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &o.Common, &o.OIDCConfig, o)
}

// GoogleProvider is provider google: Google's OpenID Connect provider.
// Its options are provider.GoogleConfig's: oidc's, with the issuer
// https://accounts.google.com by default.
type GoogleProvider struct {
	provider.GoogleConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (GoogleProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("google", func() caddy.Module { return new(GoogleProvider) })
}

// Provision replaces placeholders and builds the provider.
func (g *GoogleProvider) Provision(caddy.Context) (err error) {
	g.oauth, err = provisionOAuth(&g.Common, &g.GoogleConfig, provider.NewGoogle)
	return err
}

// Validate checks the options.
func (g *GoogleProvider) Validate() error { return g.GoogleConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (g *GoogleProvider) OAuthProvider() provider.OAuth { return g.oauth }

func (g *GoogleProvider) providerName() string { return nameOr(g.Name, "google") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider google [<name>] {
//	    client_id             <id>
//	    client_secret         <secret>      # e.g. {env.GOOGLE_CLIENT_SECRET}
//	    allowed_email_domains <domain...>   # e.g. a Workspace's
//	    the other options of provider oidc, none required
//	}
func (g *GoogleProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &g.Common, &g.GoogleConfig, g)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*GoogleProvider)(nil)
	_ caddy.Validator       = (*GoogleProvider)(nil)
	_ caddyfile.Unmarshaler = (*GoogleProvider)(nil)
	_ OAuthProvider         = (*GoogleProvider)(nil)
	_ builtinProvider       = (*GoogleProvider)(nil)

	_ caddy.Provisioner     = (*OIDCProvider)(nil)
	_ caddy.Validator       = (*OIDCProvider)(nil)
	_ caddyfile.Unmarshaler = (*OIDCProvider)(nil)
	_ OAuthProvider         = (*OIDCProvider)(nil)
	_ builtinProvider       = (*OIDCProvider)(nil)
)
