package caddymodule_test

// This file is the example provider module of docs/providers.md, word for
// word (TestProviderDocExample keeps them equal): a third party's provider
// type, built only on the exported API. The tests of package caddymodule
// sign in with it end to end.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"golang.org/x/oauth2"

	"github.com/convex-auth/caddy-convex-auth/caddymodule"
	"github.com/convex-auth/caddy-convex-auth/provider"
)

func init() {
	caddy.RegisterModule(Acme{})
}

// Acme is provider acme: sign-in with Acme's own OAuth 2.0 server.
type Acme struct {
	// Name, Label, ClientID, ClientSecret, Scopes, RedirectURL, AuthURL
	// and TokenURL, as every OAuth provider takes them.
	provider.Common
	// BaseURL is the server's root, e.g. https://login.acme.example.
	// Required; no default.
	BaseURL string `json:"base_url,omitempty"`

	config oauth2.Config
}

// CaddyModule returns the Caddy module information.
func (Acme) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.convex_auth.providers.acme",
		New: func() caddy.Module { return new(Acme) },
	}
}

// Provision replaces placeholders and fills in the defaults.
func (a *Acme) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	a.ClientID = repl.ReplaceKnown(a.ClientID, "")
	a.ClientSecret = repl.ReplaceKnown(a.ClientSecret, "")
	a.BaseURL = repl.ReplaceKnown(a.BaseURL, "")
	if a.Name == "" {
		a.Name = "acme"
	}
	if a.Label == "" {
		a.Label = "Acme"
	}
	a.config = oauth2.Config{
		ClientID: a.ClientID, ClientSecret: a.ClientSecret, Scopes: []string{"profile"},
		Endpoint: oauth2.Endpoint{AuthURL: a.BaseURL + "/oauth/authorize", TokenURL: a.BaseURL + "/oauth/token"},
	}
	return nil
}

// Validate checks the options.
func (a *Acme) Validate() error {
	if a.BaseURL == "" || a.ClientID == "" || a.ClientSecret == "" {
		return errors.New("acme needs base_url, client_id and client_secret")
	}
	return provider.ValidateName(a.Name)
}

// OAuthProvider is the sign-in method: the module itself.
func (a *Acme) OAuthProvider() provider.OAuth { return a }

// Info names the provider and its button; Common's Info also carries the
// allowed_email_domains and admission_ttl every OAuth provider takes.
func (a *Acme) Info() provider.Info { return a.Common.Info(provider.KindOIDC) }

// AuthCodeURL sends the browser to Acme, with the flow's state and PKCE
// challenge.
func (a *Acme) AuthCodeURL(ctx context.Context, f provider.Flow) (string, error) {
	c := a.config
	c.RedirectURL = f.RedirectURI
	return c.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier)), nil
}

// Identity redeems the code and reads who signed in.
func (a *Acme) Identity(ctx context.Context, f provider.Flow, cb provider.Callback) (provider.Identity, error) {
	c := a.config
	c.RedirectURL = f.RedirectURI
	tok, err := c.Exchange(ctx, cb.Code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return provider.Identity{}, fmt.Errorf("exchanging the code: %w", err)
	}
	resp, err := c.Client(ctx, tok).Get(a.BaseURL + "/api/user")
	if err != nil {
		return provider.Identity{}, fmt.Errorf("reading the user: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return provider.Identity{}, fmt.Errorf("reading the user: %s", resp.Status)
	}
	var user struct {
		ID            string `json:"id"`
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&user); err != nil || user.ID == "" {
		return provider.Identity{}, fmt.Errorf("reading the user: no id (%v)", err)
	}
	// EmailVerified only where Acme says so: accounts join by it.
	return provider.Identity{Subject: user.ID, Email: user.Email, EmailVerified: user.EmailVerified, Name: user.Name}, nil
}

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	provider acme [<name>] {
//	    base_url      <url>
//	    client_id     <id>
//	    client_secret <secret>
//	    ...           # the options every OAuth provider takes
//	}
func (a *Acme) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddymodule.UnmarshalOAuth(d, &a.Common, func(d *caddyfile.Dispenser, option string) (bool, error) {
		if option != "base_url" {
			return false, nil
		}
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		a.BaseURL = d.Val()
		return true, nil
	})
}

// Interface guards
var (
	_ caddy.Provisioner         = (*Acme)(nil)
	_ caddy.Validator           = (*Acme)(nil)
	_ caddyfile.Unmarshaler     = (*Acme)(nil)
	_ caddymodule.OAuthProvider = (*Acme)(nil)
	_ provider.OAuth            = (*Acme)(nil)
)
