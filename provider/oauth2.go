package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// OAuth2Config configures any OAuth 2.0 server with a user-info endpoint
// (provider oauth2): the authorization-code flow with state and PKCE, then
// the user from userinfo_url, read through a claim mapping.
type OAuth2Config struct {
	Common
	// UserinfoURL answers, for the access token, a JSON object about the
	// user. Required; no default. (auth_url and token_url are required
	// too.)
	UserinfoURL string `json:"userinfo_url,omitempty"`
	// Claims map the user-info answer to who signed in.
	Claims ClaimMapping `json:"claims,omitzero"`
}

// ClaimMapping names where each field of who signed in is in the
// user-info answer: a path of object keys (and array indexes) joined by
// dots, e.g. data.user.id or emails.0.address.
type ClaimMapping struct {
	// ID is the user's stable account ID, a string or a number. Default:
	// sub.
	ID string `json:"id,omitempty"`
	// Email. Default: email.
	Email string `json:"email,omitempty"`
	// EmailVerified is a boolean (true or "true") saying the server
	// verified Email. Default: none, and every email is unverified: only
	// a mapping here that reads true makes it count.
	EmailVerified string `json:"email_verified,omitempty"`
	// Name. Default: name.
	Name string `json:"name,omitempty"`
	// Picture, a URL. Default: picture.
	Picture string `json:"picture,omitempty"`
}

// Validate checks the configuration without building anything.
func (c OAuth2Config) Validate() error {
	if c.Name == "" || c.AuthURL == "" || c.TokenURL == "" || c.UserinfoURL == "" {
		return errors.New("oauth2 needs a name, auth_url, token_url and userinfo_url: provider oauth2 acme { auth_url ... }")
	}
	for option, path := range map[string]string{"id": c.Claims.ID, "email": c.Claims.Email, "email_verified": c.Claims.EmailVerified, "name": c.Claims.Name, "picture": c.Claims.Picture} {
		if path != "" && (strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..")) {
			return fmt.Errorf("claims %s: %q is not a path: use keys joined by dots, e.g. data.user.id", option, path)
		}
	}
	return c.validate(KindOIDC, false, [2]string{"userinfo_url", c.UserinfoURL})
}

type oauth2Provider struct{ c OAuth2Config }

// NewOAuth2 is a generic OAuth 2.0 provider.
func NewOAuth2(c OAuth2Config) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindOIDC), err)
	}
	c.fill(KindOIDC, c.Name)
	m := &c.Claims
	for _, f := range []struct {
		dst *string
		def string
	}{{&m.ID, "sub"}, {&m.Email, "email"}, {&m.Name, "name"}, {&m.Picture, "picture"}} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	return &oauth2Provider{c: c}, nil
}

func (o *oauth2Provider) Info() Info { return o.c.Info(KindOIDC) }

func (o *oauth2Provider) config(redirectURI string) *oauth2.Config {
	return o.c.oauth2Config(oauth2.Endpoint{}, nil, redirectURI)
}

func (o *oauth2Provider) AuthCodeURL(ctx context.Context, f Flow) (string, error) {
	return o.config(f.RedirectURI).AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier)), nil
}

func (o *oauth2Provider) Identity(ctx context.Context, f Flow, cb Callback) (Identity, error) {
	ctx = o.c.clientContext(ctx)
	tok, err := o.config(f.RedirectURI).Exchange(ctx, cb.Code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("exchanging the code: %w", err)
	}
	var info any
	if err := getJSON(ctx, o.c.HTTPClient, tok, "user info", o.c.UserinfoURL, &info); err != nil {
		return Identity{}, err
	}
	m := o.c.Claims
	id := Identity{Subject: scalar(lookupPath(info, m.ID)), Email: str(lookupPath(info, m.Email)),
		Name: str(lookupPath(info, m.Name)), Picture: str(lookupPath(info, m.Picture))}
	if m.EmailVerified != "" {
		id.EmailVerified = isTrue(lookupPath(info, m.EmailVerified))
	}
	if id.Subject == "" {
		return Identity{}, fmt.Errorf("user info has no %q: map the account ID with claims { id <path> }", m.ID)
	}
	return id, nil
}

// lookupPath follows a dotted path of object keys and array indexes.
func lookupPath(v any, path string) any {
	for key := range strings.SplitSeq(path, ".") {
		switch node := v.(type) {
		case map[string]any:
			v = node[key]
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(node) {
				return nil
			}
			v = node[i]
		default:
			return nil
		}
	}
	return v
}

// scalar is a string or a number as a string; anything else is "".
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}
