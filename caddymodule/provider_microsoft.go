package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(MicrosoftProvider{})
}

// MicrosoftProvider is provider microsoft: Microsoft Entra ID: work, school and personal Microsoft accounts. Its options are provider.EntraConfig's.
type MicrosoftProvider struct {
	provider.EntraConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (MicrosoftProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("microsoft", func() caddy.Module { return new(MicrosoftProvider) })
}

// Provision replaces placeholders and builds the provider.
func (m *MicrosoftProvider) Provision(caddy.Context) (err error) {
	m.oauth, err = provisionOAuth(&m.Common, &m.EntraConfig, provider.NewEntra)
	return err
}

// Validate checks the options.
func (m *MicrosoftProvider) Validate() error { return m.EntraConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (m *MicrosoftProvider) OAuthProvider() provider.OAuth { return m.oauth }

func (m *MicrosoftProvider) providerName() string { return nameOr(m.Name, "microsoft") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider microsoft [<name>] {
//	    client_id             <application-id>
//	    client_secret         <secret>       # e.g. {env.ENTRA_CLIENT_SECRET}
//	    tenant                common|organizations|consumers|<tenant-id>
//	    allowed_tenants       <tenant-id...>
//	    allowed_groups        <group-object-id...>
//	    groups_claim          <claim>        # default groups
//	    allowed_email_domains <domain...>
//	    admission_ttl         <duration>
//	    authority             <url>          # national clouds
//	    scopes                <scope...>
//	    redirect_url          <url>
//	    label                 <text>
//	}
func (m *MicrosoftProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &m.Common, &m.EntraConfig, m)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*MicrosoftProvider)(nil)
	_ caddy.Validator       = (*MicrosoftProvider)(nil)
	_ caddyfile.Unmarshaler = (*MicrosoftProvider)(nil)
	_ OAuthProvider         = (*MicrosoftProvider)(nil)
	_ builtinProvider       = (*MicrosoftProvider)(nil)
)
