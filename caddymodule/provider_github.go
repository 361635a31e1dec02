package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(GitHubProvider{})
}

// GitHubProvider is provider github: a GitHub OAuth app (github.com, or
// GitHub Enterprise Server with api_url). Its options are
// provider.GitHubConfig's.
type GitHubProvider struct {
	provider.GitHubConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (GitHubProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("github", func() caddy.Module { return new(GitHubProvider) })
}

// Provision replaces placeholders and builds the provider.
func (g *GitHubProvider) Provision(caddy.Context) (err error) {
	g.oauth, err = provisionOAuth(&g.Common, &g.GitHubConfig, provider.NewGitHub)
	return err
}

// Validate checks the options.
func (g *GitHubProvider) Validate() error { return g.GitHubConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (g *GitHubProvider) OAuthProvider() provider.OAuth { return g.oauth }

func (g *GitHubProvider) providerName() string { return nameOr(g.Name, "github") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider github [<name>] {
//	    client_id             <id>
//	    client_secret         <secret>      # e.g. {env.GITHUB_CLIENT_SECRET}
//	    allowed_orgs          <org...>
//	    allowed_teams         <org/team...>
//	    allowed_email_domains <domain...>
//	    admission_ttl         <duration>
//	    scopes                <scope...>
//	    redirect_url          <url>
//	    auth_url              <url>
//	    token_url             <url>
//	    api_url               <url>
//	    label                 <text>
//	}
func (g *GitHubProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &g.Common, &g.GitHubConfig, g)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*GitHubProvider)(nil)
	_ caddy.Validator       = (*GitHubProvider)(nil)
	_ caddyfile.Unmarshaler = (*GitHubProvider)(nil)
	_ OAuthProvider         = (*GitHubProvider)(nil)
	_ builtinProvider       = (*GitHubProvider)(nil)
)
