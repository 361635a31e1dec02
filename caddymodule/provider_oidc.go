package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(OIDC{})
	caddy.RegisterModule(Google{})
}

// OIDC is provider oidc: any OpenID Connect issuer, found by discovery.
// Its options are provider.OIDCConfig's.
type OIDC struct {
	provider.OIDCConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (OIDC) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  ProvidersNamespace + ".oidc",
		New: func() caddy.Module { return new(OIDC) },
	}
}

// Provision replaces placeholders and builds the provider.
func (o *OIDC) Provision(caddy.Context) error {
	if err := replaceOIDCPlaceholders(&o.OIDCConfig); err != nil {
		return err
	}
	var err error
	o.oauth, err = provider.NewOIDC(o.OIDCConfig)
	return err
}

// Validate checks the options.
func (o *OIDC) Validate() error { return o.OIDCConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (o *OIDC) OAuthProvider() provider.OAuth { return o.oauth }

func (o *OIDC) providerName() string { return nameOr(o.Name, "oidc") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider oidc <name> {
//	    issuer        <url>         # required
//	    client_id     <id>
//	    client_secret <secret>      # e.g. {env.OKTA_CLIENT_SECRET}
//	    scopes        <scope...>
//	    redirect_url  <url>
//	    auth_url      <url>
//	    token_url     <url>
//	    userinfo_url  <url>
//	    jwks_url      <url>
//	    label         <text>
//	}
func (o *OIDC) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := unmarshalOIDC(d, &o.OIDCConfig); err != nil {
		return err
	}
	return validated(d, o)
}

// unmarshalOIDC parses the options of an OIDC provider (oidc, google).
func unmarshalOIDC(d *caddyfile.Dispenser, c *provider.OIDCConfig) error {
	return UnmarshalOAuth(d, &c.Common, func(d *caddyfile.Dispenser, sub string) (bool, error) {
		switch sub {
		case "issuer":
			return true, oneArg(d, &c.Issuer)
		case "userinfo_url":
			return true, oneArg(d, &c.UserinfoURL)
		case "jwks_url":
			return true, oneArg(d, &c.JWKSURL)
		}
		return false, nil
	})
}

// replaceOIDCPlaceholders replaces the placeholders of an OIDC provider's
// options.
func replaceOIDCPlaceholders(c *provider.OIDCConfig) error {
	replacePlaceholders(&c.ClientID, &c.ClientSecret, &c.RedirectURL, &c.AuthURL, &c.TokenURL, &c.Issuer, &c.UserinfoURL, &c.JWKSURL)
	if c.ClientID == "" || c.ClientSecret == "" {
		return errEmptyCredentials
	}
	return nil
}

// Google is provider google: Google's OpenID Connect provider. Its options
// are provider.GoogleConfig's: oidc's, with the issuer
// https://accounts.google.com by default.
type Google struct {
	provider.GoogleConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (Google) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  ProvidersNamespace + ".google",
		New: func() caddy.Module { return new(Google) },
	}
}

// Provision replaces placeholders and builds the provider.
func (g *Google) Provision(caddy.Context) error {
	if err := replaceOIDCPlaceholders(&g.OIDCConfig); err != nil {
		return err
	}
	var err error
	g.oauth, err = provider.NewGoogle(g.GoogleConfig)
	return err
}

// Validate checks the options.
func (g *Google) Validate() error { return g.GoogleConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (g *Google) OAuthProvider() provider.OAuth { return g.oauth }

func (g *Google) providerName() string { return nameOr(g.Name, "google") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider google [<name>] {
//	    client_id     <id>
//	    client_secret <secret>      # e.g. {env.GOOGLE_CLIENT_SECRET}
//	    the other options of provider oidc, none required
//	}
func (g *Google) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := unmarshalOIDC(d, &g.OIDCConfig); err != nil {
		return err
	}
	return validated(d, g)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Google)(nil)
	_ caddy.Validator       = (*Google)(nil)
	_ caddyfile.Unmarshaler = (*Google)(nil)
	_ OAuthProvider         = (*Google)(nil)
	_ builtinProvider       = (*Google)(nil)

	_ caddy.Provisioner     = (*OIDC)(nil)
	_ caddy.Validator       = (*OIDC)(nil)
	_ caddyfile.Unmarshaler = (*OIDC)(nil)
	_ OAuthProvider         = (*OIDC)(nil)
	_ builtinProvider       = (*OIDC)(nil)
)
