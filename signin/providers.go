package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OAuthConfig configures an OAuth or OIDC provider. Endpoint fields
// override the provider's defaults (tests, GitHub Enterprise, an OIDC
// issuer whose discovery is incomplete).
type OAuthConfig struct {
	// Name is the URL segment and account namespace. Default: the kind
	// ("github", "google"); required for generic OIDC.
	Name string
	// Label is the button text. Default: "GitHub", "Google", or the name.
	Label        string
	ClientID     string
	ClientSecret string
	// Scopes replace the defaults: "read:user user:email" for GitHub,
	// "openid email profile" for OIDC.
	Scopes []string
	// RedirectURL is the callback registered with the provider. Default:
	// <site origin>/auth/callback/<name>.
	RedirectURL string

	// Issuer is the OIDC issuer (discovery at <issuer>/.well-known/
	// openid-configuration). Google's default: https://accounts.google.com.
	Issuer string
	// AuthURL and TokenURL override the authorization and token endpoints.
	AuthURL  string
	TokenURL string
	// UserInfoURL and JWKSURL override discovery (OIDC).
	UserInfoURL string
	JWKSURL     string
	// APIURL is GitHub's REST API root. Default: https://api.github.com;
	// GitHub Enterprise Server: https://<host>/api/v3.
	APIURL string

	// HTTPClient makes every call to the provider. Default: one with a
	// 10-second timeout.
	HTTPClient *http.Client
}

// Endpoints of github.com and Google.
const (
	GitHubAuthURL  = "https://github.com/login/oauth/authorize"
	GitHubTokenURL = "https://github.com/login/oauth/access_token"
	GitHubAPIURL   = "https://api.github.com"
	GoogleIssuer   = "https://accounts.google.com"
	// maxProviderResponseBytes bounds what is read from a provider's API.
	maxProviderResponseBytes = 1 << 20
)

func (c *OAuthConfig) base(kind, label string) error {
	if c.Name == "" {
		c.Name = kind
	}
	if err := ValidateProviderName(c.Name); err != nil {
		return err
	}
	if c.Label == "" {
		c.Label = label
	}
	if c.ClientID == "" {
		return fmt.Errorf("signin: provider %s needs a client_id", c.Name)
	}
	if c.ClientSecret == "" {
		return fmt.Errorf("signin: provider %s needs a client_secret", c.Name)
	}
	for _, u := range []struct{ name, value string }{
		{"redirect_url", c.RedirectURL}, {"issuer", c.Issuer}, {"auth_url", c.AuthURL}, {"token_url", c.TokenURL},
		{"userinfo_url", c.UserInfoURL}, {"jwks_url", c.JWKSURL}, {"api_url", c.APIURL},
	} {
		if u.value == "" {
			continue
		}
		p, err := url.Parse(u.value)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return fmt.Errorf("signin: provider %s: %s %q is not an http(s) URL", c.Name, u.name, u.value)
		}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: providerCallTimeout}
	}
	return nil
}

func (c *OAuthConfig) oauth2Config(endpoint oauth2.Endpoint, scopes []string, redirectURI string) *oauth2.Config {
	if c.AuthURL != "" {
		endpoint.AuthURL = c.AuthURL
	}
	if c.TokenURL != "" {
		endpoint.TokenURL = c.TokenURL
	}
	if len(c.Scopes) > 0 {
		scopes = c.Scopes
	}
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: endpoint, Scopes: scopes, RedirectURL: redirectURI}
}

func (c *OAuthConfig) clientContext(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, c.HTTPClient), oauth2.HTTPClient, c.HTTPClient)
}

// --- GitHub ---

type githubProvider struct{ c OAuthConfig }

// NewGitHub is GitHub's OAuth app flow: state and PKCE, then the user and
// their primary verified email from the REST API.
func NewGitHub(c OAuthConfig) (OAuthProvider, error) {
	if err := c.base("github", "GitHub"); err != nil {
		return nil, err
	}
	if c.APIURL == "" {
		c.APIURL = GitHubAPIURL
	}
	c.APIURL = strings.TrimSuffix(c.APIURL, "/")
	return &githubProvider{c: c}, nil
}

func (g *githubProvider) Name() string        { return g.c.Name }
func (g *githubProvider) Label() string       { return g.c.Label }
func (g *githubProvider) RedirectURL() string { return g.c.RedirectURL }

func (g *githubProvider) config(redirectURI string) *oauth2.Config {
	return g.c.oauth2Config(oauth2.Endpoint{AuthURL: GitHubAuthURL, TokenURL: GitHubTokenURL}, []string{"read:user", "user:email"}, redirectURI)
}

func (g *githubProvider) AuthCodeURL(ctx context.Context, f Flow) (string, error) {
	return g.config(f.RedirectURI).AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier)), nil
}

func (g *githubProvider) Identity(ctx context.Context, code string, f Flow) (Identity, error) {
	ctx = g.c.clientContext(ctx)
	tok, err := g.config(f.RedirectURI).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderResponseBytes))
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

// --- OpenID Connect (Google and any issuer) ---

type oidcProvider struct {
	c OAuthConfig

	mu       sync.Mutex
	provider *oidc.Provider // nil until discovery succeeds
	verifier *oidc.IDTokenVerifier
}

// NewGoogle is Google's OpenID Connect provider.
func NewGoogle(c OAuthConfig) (OAuthProvider, error) {
	if c.Issuer == "" {
		c.Issuer = GoogleIssuer
	}
	if err := c.base("google", "Google"); err != nil {
		return nil, err
	}
	return &oidcProvider{c: c}, nil
}

// NewOIDC is any OpenID Connect provider, found by discovery from its
// issuer. Discovery runs at the first sign-in (and again until it
// succeeds), so an unreachable provider does not stop the server.
func NewOIDC(c OAuthConfig) (OAuthProvider, error) {
	if c.Name == "" {
		return nil, errors.New("signin: an oidc provider needs a name, e.g. provider oidc okta { ... }")
	}
	if c.Issuer == "" {
		return nil, fmt.Errorf("signin: provider %s needs an issuer", c.Name)
	}
	if err := c.base("oidc", c.Name); err != nil {
		return nil, err
	}
	return &oidcProvider{c: c}, nil
}

func (o *oidcProvider) Name() string        { return o.c.Name }
func (o *oidcProvider) Label() string       { return o.c.Label }
func (o *oidcProvider) RedirectURL() string { return o.c.RedirectURL }

// discover returns the provider, discovering it on first use. All three
// endpoints configured: no discovery at all.
func (o *oidcProvider) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, o.verifier, nil
	}
	// The provider keeps the client for its key set; the request's
	// cancellation must not reach later key fetches.
	base := oidc.ClientContext(context.WithoutCancel(ctx), o.c.HTTPClient)
	var p *oidc.Provider
	if o.c.AuthURL != "" && o.c.TokenURL != "" && o.c.JWKSURL != "" {
		p = (&oidc.ProviderConfig{IssuerURL: o.c.Issuer, AuthURL: o.c.AuthURL, TokenURL: o.c.TokenURL,
			UserInfoURL: o.c.UserInfoURL, JWKSURL: o.c.JWKSURL}).NewProvider(base)
	} else {
		dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.c.HTTPClient), providerCallTimeout)
		defer cancel()
		found, err := oidc.NewProvider(dctx, o.c.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discovery at %s: %w", o.c.Issuer, err)
		}
		var doc oidc.ProviderConfig
		if err := found.Claims(&doc); err != nil {
			return nil, nil, fmt.Errorf("discovery at %s: %w", o.c.Issuer, err)
		}
		override := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		override(&doc.AuthURL, o.c.AuthURL)
		override(&doc.TokenURL, o.c.TokenURL)
		override(&doc.UserInfoURL, o.c.UserInfoURL)
		override(&doc.JWKSURL, o.c.JWKSURL)
		doc.IssuerURL = o.c.Issuer
		doc.Algorithms = supportedAlgorithms(doc.Algorithms)
		p = doc.NewProvider(base)
	}
	o.provider = p
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.c.ClientID})
	return o.provider, o.verifier, nil
}

// supportedAlgorithms keeps the asymmetric JWS algorithms go-oidc verifies;
// nil lets it use its defaults.
func supportedAlgorithms(advertised []string) []string {
	var out []string
	for _, a := range advertised {
		switch a {
		case oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA:
			out = append(out, a)
		}
	}
	return out
}

func (o *oidcProvider) config(p *oidc.Provider, redirectURI string) *oauth2.Config {
	return o.c.oauth2Config(p.Endpoint(), []string{oidc.ScopeOpenID, "email", "profile"}, redirectURI)
}

func (o *oidcProvider) AuthCodeURL(ctx context.Context, f Flow) (string, error) {
	p, _, err := o.discover(ctx)
	if err != nil {
		return "", err
	}
	return o.config(p, f.RedirectURI).AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce)), nil
}

// oidcClaims are the profile claims read from the ID token and user info.
type oidcClaims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"` // some issuers send "true"
	Name          string `json:"name"`
	Picture       string `json:"picture"`
	Username      string `json:"preferred_username"`
}

func (c oidcClaims) verified() bool {
	switch v := c.EmailVerified.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

func (o *oidcProvider) Identity(ctx context.Context, code string, f Flow) (Identity, error) {
	p, verifier, err := o.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx = o.c.clientContext(ctx)
	tok, err := o.config(p, f.RedirectURI).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("exchanging the code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return Identity{}, errors.New("the token response has no id_token")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("verifying the ID token: %w", err)
	}
	if !constantTimeEqual(idt.Nonce, f.Nonce) {
		return Identity{}, ErrNonceMismatch
	}
	var claims oidcClaims
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("reading the ID token's claims: %w", err)
	}
	claims.Subject = idt.Subject
	// Some providers put the profile only in user info.
	if (claims.Email == "" || claims.Name == "") && p.UserInfoEndpoint() != "" {
		info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("reading user info: %w", err)
		}
		var more oidcClaims
		if err := info.Claims(&more); err != nil {
			return Identity{}, fmt.Errorf("reading user info: %w", err)
		}
		if more.Subject != idt.Subject {
			return Identity{}, errors.New("user info is about another subject than the ID token")
		}
		if claims.Email == "" {
			claims.Email, claims.EmailVerified = more.Email, more.EmailVerified
		}
		if claims.Name == "" {
			claims.Name = more.Name
		}
		if claims.Picture == "" {
			claims.Picture = more.Picture
		}
		if claims.Username == "" {
			claims.Username = more.Username
		}
	}
	id := Identity{Subject: claims.Subject, Email: claims.Email, EmailVerified: claims.verified(), Name: claims.Name, Picture: claims.Picture}
	if id.Name == "" {
		id.Name = claims.Username
	}
	if id.Subject == "" {
		return Identity{}, errors.New("the ID token has no sub")
	}
	return id, nil
}
