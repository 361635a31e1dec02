// Package provider owns the OAuth 2.0 and OpenID Connect sign-in
// providers (GitHub, Google, Apple, Microsoft Entra ID, GitLab, Discord,
// Slack, any OIDC issuer, any OAuth 2.0 server) behind one small
// interface, OAuth: each type's configuration with its defaults and
// checks, the URL that starts a sign-in, who signed in, and the admission
// rules the provider answers itself (organisations, groups, tenants). It
// keeps no state and sets no cookie: signin runs the flow around it.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// OAuth is a sign-in method that sends the browser to an identity provider
// and learns from the callback who signed in. A third-party provider type
// implements it (docs/providers.md); a decorator (metrics, tracing) wraps
// one by embedding it.
type OAuth interface {
	// Info names the provider and its button. It is read once, when the
	// sign-in service is built.
	Info() Info
	// AuthCodeURL is the provider URL that starts f.
	AuthCodeURL(ctx context.Context, f Flow) (string, error)
	// Identity redeems the callback's code (with f's PKCE verifier) and
	// returns who signed in, checking f's nonce where the provider returns
	// an ID token. An error refuses the sign-in; nothing is created.
	Identity(ctx context.Context, f Flow, cb Callback) (Identity, error)
}

// Info describes a provider. New fields may be added; a provider that does
// not set them keeps today's behaviour.
type Info struct {
	// Name is the account namespace and the URL segment:
	// /auth/signin/<name>, /auth/callback/<name>. Renaming a provider
	// orphans its accounts. ValidateName says what it may hold.
	Name string
	// Label is what the sign-in button says ("GitHub").
	Label string
	// Kind picks the button's logo: one of the Kind* names, or "oidc" (a
	// key) for any other.
	Kind string
	// RedirectURL is the callback URL registered with the provider; ""
	// means <site origin>/auth/callback/<name>.
	RedirectURL string
	// FormPost says the provider answers with a form POST to the callback
	// (response_mode=form_post), from its own site: the browser sends no
	// SameSite=Lax cookie with it, so signin moves the answer to a GET
	// of the callback before it checks the flow.
	FormPost bool
	// EmailDomains, when set, admit only an identity whose verified email
	// is at one of these domains (EmailDomainAllowed); signin checks it
	// before it looks the user up.
	EmailDomains []string
	// AdmissionTTL, when set, caps the life of the sessions this provider
	// signs in: it has admission rules, checked again at the next
	// sign-in.
	AdmissionTTL time.Duration
}

// Logo kinds of Info.Kind.
const (
	KindGitHub    = "github"
	KindGoogle    = "google"
	KindApple     = "apple"
	KindMicrosoft = "microsoft"
	KindGitLab    = "gitlab"
	KindDiscord   = "discord"
	KindSlack     = "slack"
	KindOIDC      = "oidc"
)

// Flow is one authorization-code flow: the values sent to the provider and
// checked when it comes back. Fields may be added; a provider ignores what
// it does not know.
type Flow struct {
	State       string
	Verifier    string // PKCE code verifier; the provider gets its S256 challenge
	Nonce       string // OIDC nonce; providers without ID tokens ignore it
	RedirectURI string
	// ForceLogin asks the provider to authenticate the user again rather
	// than reuse its own session (step-up): OIDC providers send
	// prompt=login and max_age=0; those with no such parameter (GitHub,
	// Discord) ignore it.
	ForceLogin bool
}

// Callback is what the provider sent back to /auth/callback/<name>.
type Callback struct {
	// Code is the authorization code.
	Code string
	// Params are all of the callback's parameters, for a provider that
	// sends more than the code.
	Params url.Values
}

// Identity is who a provider says signed in.
type Identity struct {
	// Subject is the provider's stable account ID (OIDC sub, GitHub user ID).
	Subject string
	Email   string
	// EmailVerified is true only where the provider says it verified
	// Email: accounts are joined by email on that word alone.
	EmailVerified bool
	Name          string
	Picture       string
}

// ErrNonceMismatch means the ID token was not issued for this flow.
var ErrNonceMismatch = errors.New("the ID token's nonce does not match the one this sign-in sent")

// CallTimeout bounds each call to a provider (token exchange, discovery,
// user info).
const CallTimeout = 10 * time.Second

// ValidateName accepts names usable as one URL path segment and as an
// account namespace: 1 to 64 of a-z, 0-9, - and _.
func ValidateName(name string) error {
	if name == "" || len(name) > session.MaxProviderBytes {
		return fmt.Errorf("provider name %q must be 1 to %d characters", name, session.MaxProviderBytes)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("provider name %q may hold only a-z, 0-9, - and _", name)
		}
	}
	return nil
}
