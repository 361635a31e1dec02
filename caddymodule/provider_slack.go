package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(SlackProvider{})
}

// SlackProvider is provider slack: Sign in with Slack (OpenID Connect). Its options are provider.SlackConfig's.
type SlackProvider struct {
	provider.SlackConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (SlackProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("slack", func() caddy.Module { return new(SlackProvider) })
}

// Provision replaces placeholders and builds the provider.
func (s *SlackProvider) Provision(caddy.Context) (err error) {
	s.oauth, err = provisionOAuth(&s.Common, &s.SlackConfig, provider.NewSlack)
	return err
}

// Validate checks the options.
func (s *SlackProvider) Validate() error { return s.SlackConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (s *SlackProvider) OAuthProvider() provider.OAuth { return s.oauth }

func (s *SlackProvider) providerName() string { return nameOr(s.Name, "slack") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider slack [<name>] {
//	    client_id             <id>
//	    client_secret         <secret>       # e.g. {env.SLACK_CLIENT_SECRET}
//	    team                  <workspace-id> # admits that workspace only
//	    allowed_email_domains <domain...>
//	    admission_ttl         <duration>
//	    scopes                <scope...>
//	    redirect_url          <url>
//	    issuer                <url>
//	    label                 <text>
//	}
func (s *SlackProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &s.Common, &s.SlackConfig, s)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*SlackProvider)(nil)
	_ caddy.Validator       = (*SlackProvider)(nil)
	_ caddyfile.Unmarshaler = (*SlackProvider)(nil)
	_ OAuthProvider         = (*SlackProvider)(nil)
	_ builtinProvider       = (*SlackProvider)(nil)
)
