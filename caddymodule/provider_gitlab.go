package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(GitLabProvider{})
}

// GitLabProvider is provider gitlab: GitLab.com, or a self-managed instance by base_url. Its options are provider.GitLabConfig's.
type GitLabProvider struct {
	provider.GitLabConfig

	oauth provider.OAuth
}

// CaddyModule returns the Caddy module information.
func (GitLabProvider) CaddyModule() caddy.ModuleInfo {
	return oauthModuleInfo("gitlab", func() caddy.Module { return new(GitLabProvider) })
}

// Provision replaces placeholders and builds the provider.
func (g *GitLabProvider) Provision(caddy.Context) (err error) {
	g.oauth, err = provisionOAuth(&g.Common, &g.GitLabConfig, provider.NewGitLab)
	return err
}

// Validate checks the options.
func (g *GitLabProvider) Validate() error { return g.GitLabConfig.Validate() }

// OAuthProvider is the provisioned sign-in method.
func (g *GitLabProvider) OAuthProvider() provider.OAuth { return g.oauth }

func (g *GitLabProvider) providerName() string { return nameOr(g.Name, "gitlab") }

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider gitlab [<name>] {
//	    client_id             <application-id>
//	    client_secret         <secret>       # e.g. {env.GITLAB_CLIENT_SECRET}
//	    base_url              <url>          # default https://gitlab.com
//	    allowed_groups        <group-path...>
//	    groups_claim          <claim>        # default groups
//	    allowed_email_domains <domain...>
//	    admission_ttl         <duration>
//	    scopes                <scope...>
//	    redirect_url          <url>
//	    label                 <text>
//	}
func (g *GitLabProvider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalOAuthModule(d, &g.Common, &g.GitLabConfig, g)
}

// Interface guards
var (
	_ caddy.Provisioner     = (*GitLabProvider)(nil)
	_ caddy.Validator       = (*GitLabProvider)(nil)
	_ caddyfile.Unmarshaler = (*GitLabProvider)(nil)
	_ OAuthProvider         = (*GitLabProvider)(nil)
	_ builtinProvider       = (*GitLabProvider)(nil)
)
