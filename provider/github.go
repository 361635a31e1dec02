package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// Endpoints of github.com.
const (
	GitHubAuthURL  = "https://github.com/login/oauth/authorize"
	GitHubTokenURL = "https://github.com/login/oauth/access_token"
	GitHubAPIURL   = "https://api.github.com"
)

// GitHubConfig configures a GitHub OAuth app (provider github).
type GitHubConfig struct {
	Common
	// APIURL is GitHub's REST API root. Default: https://api.github.com;
	// GitHub Enterprise Server: https://<host>/api/v3.
	APIURL string `json:"api_url,omitempty"`
	// AllowedOrgs admit only active members of one of these organisations
	// (their logins), read from the API at sign-in. Adds the read:org
	// scope. An organisation that restricts OAuth apps hides its members
	// until it approves the app: such a user is refused, told so.
	// Default: none.
	AllowedOrgs []string `json:"allowed_orgs,omitempty"`
	// AllowedTeams admit only active members of one of these teams, each
	// "<org>/<team-slug>", read from the API at sign-in (read:org). A user
	// in an allowed organisation or an allowed team is admitted. Default:
	// none.
	AllowedTeams []string `json:"allowed_teams,omitempty"`
}

// Validate checks the configuration without building anything.
func (c GitHubConfig) Validate() error {
	for _, org := range c.AllowedOrgs {
		if !githubSlug(org) {
			return fmt.Errorf("allowed_orgs: %q is not an organisation login", org)
		}
	}
	for _, team := range c.AllowedTeams {
		org, slug, ok := strings.Cut(team, "/")
		if !ok || !githubSlug(org) || !githubSlug(slug) {
			return fmt.Errorf("allowed_teams: %q is not <org>/<team-slug>, e.g. acme/platform", team)
		}
	}
	return c.validate(KindGitHub, c.ownRules(), [2]string{"api_url", c.APIURL})
}

func (c GitHubConfig) ownRules() bool { return len(c.AllowedOrgs) > 0 || len(c.AllowedTeams) > 0 }

// githubSlug reports whether s can be an organisation login or team slug.
func githubSlug(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type githubProvider struct{ c GitHubConfig }

// NewGitHub is GitHub's OAuth app flow: state and PKCE, then the user and
// their primary verified email from the REST API.
func NewGitHub(c GitHubConfig) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindGitHub), err)
	}
	c.fill(KindGitHub, "GitHub")
	if c.APIURL == "" {
		c.APIURL = GitHubAPIURL
	}
	c.APIURL = strings.TrimSuffix(c.APIURL, "/")
	return &githubProvider{c: c}, nil
}

func (g *githubProvider) Info() Info {
	info := g.c.Info(KindGitHub)
	info.AdmissionTTL = g.c.Admission.ttl(g.c.ownRules())
	return info
}

func (g *githubProvider) config(redirectURI string) *oauth2.Config {
	scopes := []string{"read:user", "user:email"}
	if g.c.ownRules() {
		scopes = append(scopes, "read:org")
	}
	return g.c.oauth2Config(oauth2.Endpoint{AuthURL: GitHubAuthURL, TokenURL: GitHubTokenURL}, scopes, redirectURI)
}

func (g *githubProvider) AuthCodeURL(ctx context.Context, f Flow) (string, error) {
	return g.config(f.RedirectURI).AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier)), nil
}

func (g *githubProvider) Identity(ctx context.Context, f Flow, cb Callback) (Identity, error) {
	ctx = g.c.clientContext(ctx)
	tok, err := g.config(f.RedirectURI).Exchange(ctx, cb.Code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("exchanging the code: %w", err)
	}
	var user struct {
		ID        int64  `json:"id"`
		Login     string `json:"login"`
		Name      string `json:"name"`
		Email     string `json:"email"`
		AvatarURL string `json:"avatar_url"`
	}
	if err := g.get(ctx, tok, "/user", &user); err != nil {
		return Identity{}, err
	}
	if user.ID == 0 {
		return Identity{}, errors.New("GitHub's /user answer has no id")
	}
	id := Identity{Subject: strconv.FormatInt(user.ID, 10), Name: user.Name, Picture: user.AvatarURL, Email: user.Email}
	if id.Name == "" {
		id.Name = user.Login
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	// Without the user:email scope this fails; the public email then stays
	// unverified.
	if err := g.get(ctx, tok, "/user/emails", &emails); err == nil {
		for _, e := range emails {
			if e.Primary && e.Verified {
				id.Email, id.EmailVerified = e.Email, true
			}
		}
	}
	if g.c.ownRules() {
		if err := g.admit(ctx, tok, user.Login); err != nil {
			return Identity{}, err
		}
	}
	return id, nil
}

// admit reads the user's memberships of the allowed organisations and
// teams, one call each, until one is active. A membership GitHub will not
// show (403: the organisation restricts OAuth apps, or the user did not
// grant it) refuses as hidden when nothing else admits.
func (g *githubProvider) admit(ctx context.Context, tok *oauth2.Token, login string) error {
	paths := make([]string, 0, len(g.c.AllowedOrgs)+len(g.c.AllowedTeams))
	for _, org := range g.c.AllowedOrgs {
		paths = append(paths, "/user/memberships/orgs/"+url.PathEscape(org))
	}
	for _, team := range g.c.AllowedTeams {
		org, slug, _ := strings.Cut(team, "/")
		paths = append(paths, "/orgs/"+url.PathEscape(org)+"/teams/"+url.PathEscape(slug)+"/memberships/"+url.PathEscape(login))
	}
	hidden := false
	for _, path := range paths {
		var m struct {
			State string `json:"state"`
		}
		err := g.get(ctx, tok, path, &m)
		var status *apiStatus
		switch {
		case err == nil && m.State == "active":
			return nil
		case err == nil: // pending: invited, not yet a member
		case errors.As(err, &status) && status.code == http.StatusNotFound:
		case errors.As(err, &status) && status.code == http.StatusForbidden:
			hidden = true
		default:
			return err
		}
	}
	if hidden {
		return &Refusal{Rule: RuleOrgHidden, Detail: "GitHub hid a membership (403): the organisation must approve the OAuth app, or the user grant it"}
	}
	return &Refusal{Rule: RuleOrg, Detail: "an active member of none of allowed_orgs and allowed_teams"}
}

func (g *githubProvider) get(ctx context.Context, tok *oauth2.Token, path string, v any) error {
	return getJSON(ctx, g.c.HTTPClient, tok, "GitHub API", g.c.APIURL+path, v,
		"Accept", "application/vnd.github+json", "X-GitHub-Api-Version", "2022-11-28")
}
