package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(DiscordProvider{})
}

// DiscordProvider is provider discord: Discord. Its options are provider.DiscordConfig's.
type DiscordProvider struct {
	provider.DiscordConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (DiscordProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("discord", func() caddy.Module { return new(DiscordProvider) })
}

// Provision replaces placeholders and builds the provider.
func (dp *DiscordProvider) Provision(caddy.Context) (err error) {
	dp.oauth, err = provisionOAuth(&dp.Common, &dp.DiscordConfig, provider.NewDiscord)
	return err
}

// Validate checks the options.
func (dp *DiscordProvider) Validate() error { return dp.DiscordConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (dp *DiscordProvider) OAuthProvider() provider.OAuth { return dp.oauth }

func (dp *DiscordProvider) providerName() string { return nameOr(dp.Name, "discord") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider discord [<name>] {
//	    client_id             <id>
//	    client_secret         <secret>       # e.g. {env.DISCORD_CLIENT_SECRET}
//	    allowed_email_domains <domain...>
//	    admission_ttl         <duration>
//	    scopes                <scope...>     # default identify email
//	    redirect_url          <url>
//	    auth_url              <url>
//	    token_url             <url>
//	    api_url               <url>
//	    label                 <text>
//	}
func (dp *DiscordProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &dp.Common, &dp.DiscordConfig, dp)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*DiscordProvider)(nil)
	_ caddy.Validator       = (*DiscordProvider)(nil)
	_ caddyfile.Unmarshaler = (*DiscordProvider)(nil)
	_ OAuthProvider         = (*DiscordProvider)(nil)
	_ builtinProvider       = (*DiscordProvider)(nil)
)
