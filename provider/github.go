package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// Endpoints of github.com.
const (
	GitHubAuthURL  = "https://github.com/login/oauth/authorize"
	GitHubTokenURL = "https://github.com/login/oauth/access_token"
	GitHubAPIURL   = "https://api.github.com"
	// maxAPIResponseBytes bounds what is read from a provider's API.
	maxAPIResponseBytes = 1 << 20
)

// GitHubConfig configures a GitHub OAuth app (provider github).
type GitHubConfig struct {
	Common
	// APIURL is GitHub's REST API root. Default: https://api.github.com;
	// GitHub Enterprise Server: https://<host>/api/v3.
	APIURL string `json:"api_url,omitempty"`
}

// Validate checks the configuration without building anything.
func (c GitHubConfig) Validate() error {
	return c.validate(KindGitHub, [2]string{"api_url", c.APIURL})
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
	return Info{Name: g.c.Name, Label: g.c.Label, Kind: KindGitHub, RedirectURL: g.c.RedirectURL}
}

func (g *githubProvider) config(redirectURI string) *oauth2.Config {
	return g.c.oauth2Config(oauth2.Endpoint{AuthURL: GitHubAuthURL, TokenURL: GitHubTokenURL}, []string{"read:user", "user:email"}, redirectURI)
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
	return id, nil
}

func (g *githubProvider) get(ctx context.Context, tok *oauth2.Token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.c.APIURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	tok.SetAuthHeader(req)
	resp, err := g.c.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("GitHub API %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponseBytes))
	if err != nil {
		return fmt.Errorf("GitHub API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GitHub API %s answered %s", path, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GitHub API %s: %w", path, err)
	}
	return nil
}
