package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// Common is what every OAuth 2.0 and OIDC provider type takes; each type's
// configuration embeds it. Values may hold placeholders ({env.X}) that the
// host replaces before New: a URL's form is checked once it holds none.
type Common struct {
	// Name is the URL segment and account namespace. Default: the type
	// (github, google); required for oidc. Renaming a provider orphans
	// its accounts.
	Name string `json:"name,omitempty"`
	// Label is the button text. Default: GitHub, Google, or the name.
	Label string `json:"label,omitempty"`
	// ClientID is the OAuth app's client ID, e.g. {env.GITHUB_CLIENT_ID}.
	// Required; no default.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the OAuth app's client secret; use a placeholder
	// such as {env.GITHUB_CLIENT_SECRET}. Required; no default.
	ClientSecret string `json:"client_secret,omitempty"`
	// Scopes replace the default scopes. Default: read:user user:email
	// for github, openid email profile for google and oidc.
	Scopes []string `json:"scopes,omitempty"`
	// RedirectURL is the callback URL registered with the provider.
	// Default: <site origin>/auth/callback/<name>.
	RedirectURL string `json:"redirect_url,omitempty"`
	// AuthURL overrides the authorization endpoint. Default: GitHub's for
	// github, OIDC discovery for google and oidc.
	AuthURL string `json:"auth_url,omitempty"`
	// TokenURL overrides the token endpoint. Default: GitHub's for github,
	// OIDC discovery for google and oidc.
	TokenURL string `json:"token_url,omitempty"`
	// Admission: allowed_email_domains and admission_ttl.
	Admission

	// HTTPClient makes every call to the provider. Default: one with a
	// CallTimeout timeout.
	HTTPClient *http.Client `json:"-"`
}

// name is the configured name, or the type's.
func (c *Common) name(kind string) string {
	if c.Name != "" {
		return c.Name
	}
	return kind
}

// validate checks what every type takes; own says whether the type's own
// admission rules are set; urls are the type's own URL options, by option
// name.
func (c *Common) validate(kind string, own bool, urls ...[2]string) error {
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("client_id and client_secret are required: use placeholders such as {env.CLIENT_SECRET} for the secret")
	}
	return c.validateSecretless(kind, own, urls...)
}

// validateSecretless is validate for a type whose client secret is not
// configured as such (Apple signs one).
func (c *Common) validateSecretless(kind string, own bool, urls ...[2]string) error {
	if err := ValidateName(c.name(kind)); err != nil {
		return err
	}
	if c.ClientID == "" {
		return errors.New("client_id is required")
	}
	if err := c.Admission.validate(own); err != nil {
		return err
	}
	urls = append(urls, [2]string{"redirect_url", c.RedirectURL}, [2]string{"auth_url", c.AuthURL}, [2]string{"token_url", c.TokenURL})
	for _, u := range urls {
		if u[1] != "" && !httprule.IsAbsoluteHTTPURL(u[1]) && !httprule.HasPlaceholder(u[1]) {
			return fmt.Errorf("%s %q is not an http(s) URL", u[0], u[1])
		}
	}
	return nil
}

// fill sets the defaults of a checked configuration.
func (c *Common) fill(kind, label string) {
	c.Name = c.name(kind)
	if c.Label == "" {
		c.Label = label
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: CallTimeout}
	}
}

// Info describes a provider of this configuration (filled in) and kind:
// its name, label, logo, callback URL and allowed email domains, with the
// admission TTL those domains bring. A type with admission rules of its
// own sets AdmissionTTL from Admission's ttl.
func (c *Common) Info(kind string) Info {
	return Info{Name: c.Name, Label: c.Label, Kind: kind, RedirectURL: c.RedirectURL,
		EmailDomains: c.AllowedEmailDomains, AdmissionTTL: c.Admission.ttl(false)}
}

func (c *Common) oauth2Config(endpoint oauth2.Endpoint, scopes []string, redirectURI string) *oauth2.Config {
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

// clientContext makes oauth2 and go-oidc call the provider with
// HTTPClient.
func (c *Common) clientContext(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, c.HTTPClient), oauth2.HTTPClient, c.HTTPClient)
}
