package provider

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// GoogleIssuer is Google's OpenID Connect issuer.
const GoogleIssuer = "https://accounts.google.com"

// OIDCConfig configures any OpenID Connect provider (provider oidc),
// found by discovery from its issuer.
type OIDCConfig struct {
	Common
	// Issuer is the issuer URL; discovery is at
	// <issuer>/.well-known/openid-configuration. Required; no default.
	Issuer string `json:"issuer,omitempty"`
	// UserinfoURL overrides the user-info endpoint. Default: discovery's.
	UserinfoURL string `json:"userinfo_url,omitempty"`
	// JWKSURL overrides where the ID tokens' keys are read. Default:
	// discovery's.
	JWKSURL string `json:"jwks_url,omitempty"`
}

// Validate checks the configuration without building anything.
func (c OIDCConfig) Validate() error {
	if c.Name == "" || c.Issuer == "" {
		return errors.New("oidc needs a name and an issuer: provider oidc okta { issuer https://example.okta.com ... }")
	}
	return c.validate(KindOIDC)
}

func (c OIDCConfig) validate(kind string) error {
	return c.Common.validate(kind, [2]string{"issuer", c.Issuer}, [2]string{"userinfo_url", c.UserinfoURL}, [2]string{"jwks_url", c.JWKSURL})
}

// GoogleConfig configures Google's OpenID Connect provider (provider
// google): OIDCConfig whose issuer defaults to Google's.
type GoogleConfig struct {
	OIDCConfig
}

// Validate checks the configuration without building anything. The
// issuer defaults to https://accounts.google.com.
func (c GoogleConfig) Validate() error {
	return c.validate(KindGoogle)
}

type oidcProvider struct {
	c    OIDCConfig
	kind string

	mu       sync.Mutex
	provider *oidc.Provider // nil until discovery succeeds
	verifier *oidc.IDTokenVerifier
}

// NewGoogle is Google's OpenID Connect provider.
func NewGoogle(c GoogleConfig) (OAuth, error) {
	if c.Issuer == "" {
		c.Issuer = GoogleIssuer
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindGoogle), err)
	}
	c.fill(KindGoogle, "Google")
	return newOIDC(c.OIDCConfig), nil
}

// NewOIDC is any OpenID Connect provider, found by discovery from its
// issuer. Discovery runs at the first sign-in (and again until it
// succeeds), so an unreachable provider does not stop the server.
func NewOIDC(c OIDCConfig) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindOIDC), err)
	}
	c.fill(KindOIDC, c.Name)
	return newOIDC(c), nil
}

func newOIDC(c OIDCConfig) *oidcProvider {
	kind := KindOIDC
	if c.Issuer == GoogleIssuer || c.Name == "google" {
		kind = KindGoogle
	}
	return &oidcProvider{c: c, kind: kind}
}

func (o *oidcProvider) Info() Info {
	return Info{Name: o.c.Name, Label: o.c.Label, Kind: o.kind, RedirectURL: o.c.RedirectURL}
}

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
			UserInfoURL: o.c.UserinfoURL, JWKSURL: o.c.JWKSURL}).NewProvider(base)
	} else {
		dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.c.HTTPClient), CallTimeout)
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
		override(&doc.UserInfoURL, o.c.UserinfoURL)
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

func (o *oidcProvider) Identity(ctx context.Context, f Flow, cb Callback) (Identity, error) {
	p, verifier, err := o.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx = o.c.clientContext(ctx)
	tok, err := o.config(p, f.RedirectURI).Exchange(ctx, cb.Code, oauth2.VerifierOption(f.Verifier))
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
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
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
