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
	// Groups: allowed_groups and groups_claim.
	Groups
}

// Validate checks the configuration without building anything.
func (c OIDCConfig) Validate() error {
	if c.Name == "" || c.Issuer == "" {
		return errors.New("oidc needs a name and an issuer: provider oidc okta { issuer https://example.okta.com ... }")
	}
	return c.validate(KindOIDC)
}

func (c OIDCConfig) validate(kind string) error {
	if err := c.Groups.validate(); err != nil {
		return err
	}
	return c.Common.validate(kind, len(c.AllowedGroups) > 0, [2]string{"issuer", c.Issuer}, [2]string{"userinfo_url", c.UserinfoURL}, [2]string{"jwks_url", c.JWKSURL})
}

// GoogleConfig configures Google's OpenID Connect provider (provider
// google): OIDCConfig whose issuer defaults to Google's.
type GoogleConfig struct {
	OIDCConfig
}

// Validate checks the configuration without building anything. The
// issuer defaults to https://accounts.google.com.
func (c GoogleConfig) Validate() error {
	if len(c.AllowedGroups) > 0 && (c.Issuer == "" || c.Issuer == GoogleIssuer) {
		return errors.New("allowed_groups: Google's tokens carry no groups: admit a Workspace by allowed_email_domains instead")
	}
	return c.validate(KindGoogle)
}

// oidcProvider is an OpenID Connect provider: the flow with state, PKCE
// and nonce, the ID token verified, the profile from its claims and, for
// what it lacks, from user info. A provider type's departures from plain
// OIDC are its quirks.
type oidcProvider struct {
	c      OIDCConfig
	kind   string
	quirks oidcQuirks

	mu       sync.Mutex
	provider *oidc.Provider // nil until discovery succeeds
	verifier *oidc.IDTokenVerifier
}

// oidcQuirks are where a provider type departs from plain OIDC; the zero
// value is plain OIDC.
type oidcQuirks struct {
	// scopes are the default scopes. Default: openid email profile.
	scopes []string
	// formPost asks for the answer as a form POST (Apple).
	formPost bool
	// authParams are more parameters of the authorization request.
	authParams []oauth2.AuthCodeOption
	// clientSecret makes the client secret of each exchange, sent in the
	// form (Apple signs one); nil: Common.ClientSecret.
	clientSecret func() (string, error)
	// checkIssuer replaces go-oidc's exact issuer check (Entra ID's
	// multi-tenant issuers); it gets the verified token's claims.
	checkIssuer func(claims map[string]any) error
	// admit applies the type's own admission rules to the claims, after
	// user info filled them in.
	admit func(claims map[string]any) error
	// identity maps the claims to who signed in; nil: the standard claims.
	identity func(claims map[string]any, cb Callback) (Identity, error)
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
	return newOIDC(c.OIDCConfig, KindGoogle, oidcQuirks{}), nil
}

// NewOIDC is any OpenID Connect provider, found by discovery from its
// issuer. Discovery runs at the first sign-in (and again until it
// succeeds), so an unreachable provider does not stop the server.
func NewOIDC(c OIDCConfig) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindOIDC), err)
	}
	c.fill(KindOIDC, c.Name)
	kind := KindOIDC
	if c.Issuer == GoogleIssuer || c.Name == "google" {
		kind = KindGoogle
	}
	return newOIDC(c, kind, oidcQuirks{}), nil
}

func newOIDC(c OIDCConfig, kind string, q oidcQuirks) *oidcProvider {
	return &oidcProvider{c: c, kind: kind, quirks: q}
}

func (o *oidcProvider) Info() Info {
	info := o.c.Info(o.kind)
	info.FormPost = o.quirks.formPost
	info.AdmissionTTL = o.c.Admission.ttl(len(o.c.AllowedGroups) > 0 || o.quirks.admit != nil)
	return info
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
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.c.ClientID, SkipIssuerCheck: o.quirks.checkIssuer != nil})
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
	scopes := o.quirks.scopes
	if scopes == nil {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return o.c.oauth2Config(p.Endpoint(), scopes, redirectURI)
}

func (o *oidcProvider) AuthCodeURL(ctx context.Context, f Flow) (string, error) {
	p, _, err := o.discover(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce)}
	if o.quirks.formPost {
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", "form_post"))
	}
	opts = append(opts, o.quirks.authParams...)
	if f.ForceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	return o.config(p, f.RedirectURI).AuthCodeURL(f.State, opts...), nil
}

// Claims read for the profile; a claim the ID token lacks is read from
// user info.
const (
	claimSub           = "sub"
	claimEmail         = "email"
	claimEmailVerified = "email_verified"
	claimName          = "name"
	claimPicture       = "picture"
	claimUsername      = "preferred_username"
)

func (o *oidcProvider) Identity(ctx context.Context, f Flow, cb Callback) (Identity, error) {
	p, verifier, err := o.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx = o.c.clientContext(ctx)
	cfg := o.config(p, f.RedirectURI)
	if o.quirks.clientSecret != nil {
		secret, err := o.quirks.clientSecret()
		if err != nil {
			return Identity{}, fmt.Errorf("signing the client secret: %w", err)
		}
		cfg.ClientSecret = secret
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	tok, err := cfg.Exchange(ctx, cb.Code, oauth2.VerifierOption(f.Verifier))
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
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("reading the ID token's claims: %w", err)
	}
	if o.quirks.checkIssuer != nil {
		if err := o.quirks.checkIssuer(claims); err != nil {
			return Identity{}, err
		}
	}
	claims[claimSub] = idt.Subject
	if err := o.fillFromUserinfo(ctx, p, tok, claims); err != nil {
		return Identity{}, err
	}
	if err := o.c.Groups.admit(claims); err != nil {
		return Identity{}, err
	}
	if o.quirks.admit != nil {
		if err := o.quirks.admit(claims); err != nil {
			return Identity{}, err
		}
	}
	var id Identity
	if o.quirks.identity != nil {
		id, err = o.quirks.identity(claims, cb)
		if err != nil {
			return Identity{}, err
		}
	} else {
		id = standardIdentity(claims)
	}
	if id.Subject == "" {
		return Identity{}, errors.New("the ID token has no sub")
	}
	return id, nil
}

// fillFromUserinfo reads user info when the ID token lacks the email,
// the name or the groups the rules need, and copies the claims the token
// lacks; an email comes with its own email_verified.
func (o *oidcProvider) fillFromUserinfo(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, claims map[string]any) error {
	_, hasEmail := claims[claimEmail]
	_, hasName := claims[claimName]
	_, hasGroups := claims[o.c.Groups.claim()]
	needGroups := len(o.c.AllowedGroups) > 0 && !hasGroups
	if hasEmail && hasName && !needGroups || p.UserInfoEndpoint() == "" {
		return nil
	}
	info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return fmt.Errorf("reading user info: %w", err)
	}
	more := map[string]any{}
	if err := info.Claims(&more); err != nil {
		return fmt.Errorf("reading user info: %w", err)
	}
	if more[claimSub] != claims[claimSub] {
		return errors.New("user info is about another subject than the ID token")
	}
	if !hasEmail {
		delete(claims, claimEmailVerified)
		if v, ok := more[claimEmailVerified]; ok {
			claims[claimEmailVerified] = v
		}
	}
	for k, v := range more {
		if _, ok := claims[k]; !ok && k != claimEmailVerified {
			claims[k] = v
		}
	}
	return nil
}

// standardIdentity reads the standard claims; the name falls back to
// preferred_username.
func standardIdentity(claims map[string]any) Identity {
	id := Identity{Subject: str(claims[claimSub]), Email: str(claims[claimEmail]), EmailVerified: isTrue(claims[claimEmailVerified]),
		Name: str(claims[claimName]), Picture: str(claims[claimPicture])}
	if id.Name == "" {
		id.Name = str(claims[claimUsername])
	}
	return id
}

// str is v when it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// isTrue reads a boolean claim that some providers send as a string
// ("true"): only true and "true" are true.
func isTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}
