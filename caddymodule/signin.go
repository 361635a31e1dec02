package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/internal/seal"
	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// Provider types.
const (
	providerGitHub   = "github"
	providerGoogle   = "google"
	providerOIDC     = "oidc"
	providerPassword = signin.ProviderPassword
	providerEmail    = signin.ProviderEmail
	providerGuest    = signin.ProviderAnonymous
)

// SignInOptions configure the gateway's own sign-in: the page at
// /auth/signin, /auth/signin/<provider> and /auth/callback/<provider>.
// They are Handler's sign_in field.
type SignInOptions struct {
	// Providers are the sign-in methods, in page order. Default: none, and
	// the gateway serves no sign-in endpoints (sign_in_url may point at the
	// app's own page).
	Providers []*ProviderConfig `json:"providers,omitempty"`

	// AfterSignIn is where a browser goes after signing in when it brought
	// no acceptable redirectTo: a path on this site or an http(s) URL.
	// Default: "/".
	AfterSignIn string `json:"after_sign_in,omitempty"`

	// LinkByEmail joins a new provider account to the existing user with
	// the same email when both the provider and the user's record say it is
	// verified. Default: false.
	LinkByEmail bool `json:"link_by_email,omitempty"`

	// RedirectOrigins are the origins (scheme://host[:port]) besides this
	// site that redirectTo may point at. Default: none, paths only.
	RedirectOrigins []string `json:"redirect_origins,omitempty"`

	// SignInTemplate is an html/template file that replaces the built-in
	// sign-in page. Default: none, the built-in page.
	SignInTemplate string `json:"sign_in_template,omitempty"`

	// Limits are the rate limits on sign-ups, password sign-ins, email
	// sends and OAuth starts, per client and global. Default: each
	// LimitsConfig field's default.
	Limits *LimitsConfig `json:"limits,omitempty"`

	// Mail is the one mail setup every provider uses: magic links, codes,
	// verification and reset. Default: none; provider email's own smtp_*
	// options make one (the older form).
	Mail *MailOptions `json:"email,omitempty"`
}

// SMTPOptions say where mail goes: the email block's, and provider
// email's older form (without an email block).
type SMTPOptions struct {
	// SMTPHost is the mail server's host name. Required; no default.
	SMTPHost string `json:"smtp_host,omitempty"`
	// SMTPPort is the mail server's port. Default: 587 for starttls, 465
	// for tls, 25 for none.
	SMTPPort int `json:"smtp_port,omitempty"`
	// SMTPTLS is starttls, tls or none. Default: starttls.
	SMTPTLS string `json:"smtp_tls,omitempty"`
	// SMTPUsername authenticates with AUTH PLAIN, over TLS only. Default:
	// none, no authentication; set with smtp_password.
	SMTPUsername string `json:"smtp_username,omitempty"`
	// SMTPPassword goes with smtp_username; use a placeholder such as
	// {env.SMTP_PASSWORD}. Default: none.
	SMTPPassword string `json:"smtp_password,omitempty"`
	// From is the sender, e.g. "Example <login@example.com>". Required; no
	// default.
	From string `json:"from,omitempty"`
}

// mailer builds the SMTP client, with replace applied to the options that
// may be placeholders.
func (o SMTPOptions) mailer(replace func(string) string) *mail.SMTPMailer {
	return &mail.SMTPMailer{Host: replace(o.SMTPHost), Port: o.SMTPPort, Security: o.SMTPTLS,
		Username: replace(o.SMTPUsername), Password: replace(o.SMTPPassword), From: replace(o.From)}
}

// MailOptions configure sending mail (the Caddyfile's email block).
type MailOptions struct {
	SMTPOptions
	// SiteName names the site in every mail's subject and body. Default:
	// the issuer's host.
	SiteName string `json:"site_name,omitempty"`
	// Templates is a directory of mail templates that replace the
	// built-in ones file by file (signin_link, signin_code, verify, reset;
	// .txt and .html; layout.html). Default: none, the built-in ones.
	Templates string `json:"templates,omitempty"`
	// MaxSends is how many mails one address gets per hour, all kinds
	// together. Default: 5.
	MaxSends int `json:"max_sends,omitempty"`
}

// check validates the block; its errors name the option at fault.
func (m *MailOptions) check() error {
	if m.SMTPHost == "" || m.From == "" {
		return errors.New("email needs smtp_host and from")
	}
	if !strings.Contains(m.From, "{") && !strings.Contains(m.SMTPHost, "{") {
		if err := m.mailer(func(s string) string { return s }).Validate(); err != nil {
			return err
		}
	}
	if m.MaxSends < 0 {
		return errors.New("max_sends must be at least 1")
	}
	if m.Templates != "" && !strings.Contains(m.Templates, "{") {
		if _, err := mail.ParseTemplates(m.Templates); err != nil {
			return fmt.Errorf("templates: %w", err)
		}
	}
	return nil
}

// ProviderConfig is one sign-in method. Which fields apply depends on Type.
type ProviderConfig struct {
	// Type is github, google, oidc, password, email or anonymous. Required.
	Type string `json:"type"`
	// Name is the URL segment and account namespace. Default: the type;
	// required for oidc. Renaming a provider orphans its accounts.
	Name string `json:"name,omitempty"`
	// Label is the button text (github, google, oidc). Default: GitHub,
	// Google, or the name.
	Label string `json:"label,omitempty"`

	// ClientID is the OAuth app's client ID (github, google, oidc); it
	// accepts placeholders such as {env.GITHUB_CLIENT_ID}. Required for
	// those types; no default.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the OAuth app's client secret (github, google, oidc);
	// use a placeholder such as {env.GITHUB_CLIENT_SECRET}. Required for
	// those types; no default.
	ClientSecret string `json:"client_secret,omitempty"`
	// Scopes replace the default scopes. Default: "read:user user:email"
	// for github, "openid email profile" for google and oidc.
	Scopes []string `json:"scopes,omitempty"`
	// RedirectURL is the callback URL registered with the provider.
	// Default: <issuer origin>/auth/callback/<name>.
	RedirectURL string `json:"redirect_url,omitempty"`
	// Issuer is the OIDC issuer URL (google, oidc). Required for oidc;
	// default for google: https://accounts.google.com.
	Issuer string `json:"issuer,omitempty"`
	// AuthURL overrides the authorization endpoint. Default: GitHub's for
	// github, OIDC discovery for google and oidc.
	AuthURL string `json:"auth_url,omitempty"`
	// TokenURL overrides the token endpoint. Default: GitHub's for github,
	// OIDC discovery for google and oidc.
	TokenURL string `json:"token_url,omitempty"`
	// UserinfoURL overrides the user-info endpoint (google, oidc).
	// Default: OIDC discovery.
	UserinfoURL string `json:"userinfo_url,omitempty"`
	// JWKSURL overrides where the ID tokens' keys are read (google, oidc).
	// Default: OIDC discovery.
	JWKSURL string `json:"jwks_url,omitempty"`
	// APIURL is GitHub's REST API root (github). Default:
	// https://api.github.com (GitHub Enterprise Server:
	// https://<host>/api/v3).
	APIURL string `json:"api_url,omitempty"`

	// MinLength is the shortest password accepted at sign-up (password).
	// Default: 8.
	MinLength int `json:"min_length,omitempty"`
	// MaxAttempts is how many failed sign-ins an account may have per
	// hour (password). Default: 10.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// VerifyEmail is off, optional or required (password): optional mails
	// a verification link at sign-up; required lets nobody sign in before
	// using it. Default: optional when mail is configured, off when not.
	VerifyEmail string `json:"verify_email,omitempty"`
	// VerifyTTL is how long a verification link works, 1m to 168h; under
	// required, a sign-up not verified by then is forgotten (password).
	// Default: 24h.
	VerifyTTL caddy.Duration `json:"verify_ttl,omitempty"`
	// ResetTTL is how long a password-reset link works, 1m to 24h
	// (password). Default: 15m.
	ResetTTL caddy.Duration `json:"reset_ttl,omitempty"`

	// Mode is link or code (email): link mails a link and its code; code
	// mails only a code typed on the page. Default: link.
	Mode string `json:"mode,omitempty"`

	// SMTPOptions are provider email's older form of the email block
	// (smtp_host, smtp_port, smtp_tls, smtp_username, smtp_password,
	// from): required for email unless the email block sets mail up.
	SMTPOptions
	// LinkTTL is how long a magic link works, 1m to 24h (email). Default:
	// 15m.
	LinkTTL caddy.Duration `json:"link_ttl,omitempty"`
	// MaxSends is how many links one address gets per hour (email).
	// Default: 5.
	MaxSends int `json:"max_sends,omitempty"`

	// GuestTTL is how long a guest may go unused before it is removed
	// with its sessions, at least 1m (anonymous). Default: 720h (30 days).
	GuestTTL caddy.Duration `json:"guest_ttl,omitempty"`
}

// signInOptions returns the sign-in options, creating them for the
// Caddyfile parser.
func (h *Handler) signInOptions() *SignInOptions {
	if h.SignIn == nil {
		h.SignIn = new(SignInOptions)
	}
	return h.SignIn
}

// providers are the configured sign-in providers, if any.
func (h *Handler) providers() []*ProviderConfig {
	if h.SignIn == nil {
		return nil
	}
	return h.SignIn.Providers
}

func (p *ProviderConfig) name() string {
	if p.Name != "" {
		return p.Name
	}
	return p.Type
}

// checkSignIn validates the sign-in options without building anything.
func (h *Handler) checkSignIn() error {
	o := h.SignIn
	if o == nil {
		return nil
	}
	if len(o.Providers) == 0 {
		if o.AfterSignIn != "" || o.LinkByEmail || len(o.RedirectOrigins) > 0 || o.SignInTemplate != "" || o.Limits != nil || o.Mail != nil {
			return errors.New("convex_auth: after_sign_in, link_by_email, redirect_origins, sign_in_template, limits and email need at least one provider")
		}
		return nil
	}
	if _, err := signin.NewRedirectPolicy(o.AfterSignIn, o.RedirectOrigins); err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	if _, err := o.Limits.limits(); err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	if o.Mail != nil {
		if err := o.Mail.check(); err != nil {
			return fmt.Errorf("convex_auth: email: %w", err)
		}
	}
	mail := o.Mail != nil
	for _, p := range o.Providers {
		if p != nil && p.Type == providerEmail && p.SMTPHost != "" {
			if mail {
				return errors.New("convex_auth: provider email: smtp_host is set here and in the email block: keep the email block and drop smtp_* here")
			}
			mail = true
		}
	}
	seen := map[string]bool{}
	for _, p := range o.Providers {
		if p == nil {
			return errors.New("convex_auth: a provider entry is empty")
		}
		if p.Type == providerPassword && !mail && (p.VerifyEmail == signin.VerifyOptional || p.VerifyEmail == signin.VerifyRequired) {
			return fmt.Errorf("convex_auth: provider password: verify_email %s needs mail: add an email { smtp_host ... from ... } block", p.VerifyEmail)
		}
		if p.Type == providerEmail && !mail {
			return errors.New("convex_auth: provider email: email needs smtp_host and from: set them in an email { ... } block")
		}
		name := p.name()
		if seen[name] {
			return fmt.Errorf("convex_auth: two providers are named %q: give one a name, e.g. provider oidc okta { ... }", name)
		}
		seen[name] = true
		if err := p.check(); err != nil {
			return fmt.Errorf("convex_auth: provider %s: %w", name, err)
		}
	}
	return nil
}

func (p *ProviderConfig) check() error {
	oauthFields := p.ClientID != "" || p.ClientSecret != "" || len(p.Scopes) > 0 || p.RedirectURL != "" || p.Issuer != "" ||
		p.AuthURL != "" || p.TokenURL != "" || p.UserinfoURL != "" || p.JWKSURL != "" || p.APIURL != ""
	passwordFields := p.MinLength != 0 || p.MaxAttempts != 0 || p.VerifyEmail != "" || p.VerifyTTL != 0 || p.ResetTTL != 0
	smtpFields := p.SMTPHost != "" || p.SMTPPort != 0 || p.SMTPTLS != "" || p.SMTPUsername != "" || p.SMTPPassword != "" ||
		p.From != "" || p.MaxSends != 0
	emailFields := smtpFields || p.LinkTTL != 0 || p.Mode != ""
	guestFields := p.GuestTTL != 0
	if err := provider.ValidateName(p.name()); err != nil {
		return err
	}
	switch p.Type {
	case providerGitHub, providerGoogle, providerOIDC:
		if passwordFields || emailFields || guestFields {
			return fmt.Errorf("%s takes OAuth options only (client_id, client_secret, scopes, endpoints)", p.Type)
		}
		if p.ClientID == "" || p.ClientSecret == "" {
			return errors.New("client_id and client_secret are required: use placeholders such as {env.CLIENT_SECRET} for the secret")
		}
		if p.Type == providerOIDC && (p.Name == "" || p.Issuer == "") {
			return errors.New("oidc needs a name and an issuer: provider oidc okta { issuer https://example.okta.com ... }")
		}
		if p.Type == providerGitHub && (p.Issuer != "" || p.UserinfoURL != "" || p.JWKSURL != "") {
			return errors.New("github is OAuth 2.0, not OIDC: it takes auth_url, token_url and api_url, not issuer, userinfo_url or jwks_url")
		}
		if p.Type != providerGitHub && p.APIURL != "" {
			return errors.New("api_url is for github only")
		}
		for _, u := range []struct{ name, value string }{{"redirect_url", p.RedirectURL}, {"issuer", p.Issuer},
			{"auth_url", p.AuthURL}, {"token_url", p.TokenURL}, {"userinfo_url", p.UserinfoURL}, {"jwks_url", p.JWKSURL}, {"api_url", p.APIURL}} {
			if u.value != "" && !httprule.IsAbsoluteHTTPURL(u.value) && !strings.Contains(u.value, "{") {
				return fmt.Errorf("%s %q is not an http(s) URL", u.name, u.value)
			}
		}
	case providerPassword:
		if p.Name != "" && p.Name != providerPassword || oauthFields || emailFields || guestFields || p.Label != "" {
			return errors.New("password takes only min_length, max_attempts, verify_email, verify_ttl and reset_ttl")
		}
		if p.MinLength < 0 || p.MinLength > signin.MaxPasswordLength || p.MaxAttempts < 0 {
			return fmt.Errorf("min_length must be 1 to %d and max_attempts at least 1", signin.MaxPasswordLength)
		}
		switch p.VerifyEmail {
		case "", signin.VerifyOff, signin.VerifyOptional, signin.VerifyRequired:
		default:
			return fmt.Errorf("verify_email %q is unknown: use off, optional or required", p.VerifyEmail)
		}
		if ttl := time.Duration(p.VerifyTTL); ttl != 0 && (ttl < time.Minute || ttl > signin.MaxVerifyTTL) {
			return fmt.Errorf("verify_ttl %s is out of range: use 1m to %s", ttl, signin.MaxVerifyTTL)
		}
		if ttl := time.Duration(p.ResetTTL); ttl != 0 && (ttl < time.Minute || ttl > signin.MaxLinkTTL) {
			return fmt.Errorf("reset_ttl %s is out of range: use 1m to %s", ttl, signin.MaxLinkTTL)
		}
	case providerEmail:
		if p.Name != "" && p.Name != providerEmail || oauthFields || passwordFields || guestFields || p.Label != "" {
			return errors.New("email takes only mode, link_ttl, and (without an email block) smtp_host, smtp_port, smtp_tls, smtp_username, smtp_password, from and max_sends")
		}
		if p.Mode != "" && p.Mode != signin.EmailModeLink && p.Mode != signin.EmailModeCode {
			return fmt.Errorf("mode %q is unknown: use link or code", p.Mode)
		}
		if smtpFields {
			if p.SMTPHost == "" || p.From == "" {
				return errors.New("email needs smtp_host and from")
			}
			m := p.mailer(func(s string) string { return s })
			if !strings.Contains(p.From, "{") {
				if err := m.Validate(); err != nil {
					return err
				}
			}
		}
		if ttl := time.Duration(p.LinkTTL); ttl != 0 && (ttl < time.Minute || ttl > signin.MaxLinkTTL) {
			return fmt.Errorf("link_ttl %s is out of range: use 1m to %s", ttl, signin.MaxLinkTTL)
		}
		if p.MaxSends < 0 {
			return errors.New("max_sends must be at least 1")
		}
	case providerGuest:
		if p.Name != "" && p.Name != providerGuest || oauthFields || passwordFields || emailFields || p.Label != "" {
			return errors.New("anonymous takes only guest_ttl")
		}
		if ttl := time.Duration(p.GuestTTL); ttl != 0 && ttl < time.Minute {
			return fmt.Errorf("guest_ttl %s is too short: use at least 1m (default 720h)", ttl)
		}
	case "":
		return errors.New("type is required: github, google, oidc, password, email or anonymous")
	default:
		return fmt.Errorf("type %q is unknown: use github, google, oidc, password, email or anonymous", p.Type)
	}
	return nil
}

// provisionSignIn builds the sign-in service when providers are set.
func (h *Handler) provisionSignIn(ctx caddy.Context) error {
	o := h.SignIn
	if o == nil || len(o.Providers) == 0 {
		return nil
	}
	st := h.store
	if m, ok := st.(meteredStore); ok {
		st = m.Store
	}
	users, ok := st.(session.UserStore)
	if !ok {
		return fmt.Errorf("convex_auth: the session store %T keeps no users", st)
	}
	redirects, err := signin.NewRedirectPolicy(o.AfterSignIn, o.RedirectOrigins)
	if err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	limits, err := o.Limits.limits()
	if err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	cfg := signin.Config{
		Origin:      issuerOrigin(h.Issuer),
		Redirects:   redirects,
		LinkByEmail: o.LinkByEmail,
		Users:       users,
		Realm:       h.realm,
		Limits:      limits,
		ClientIP:    caddyClientIP,
		OnResult:    gatewayMetricsHooks{}.SignIn,
		OnLimited:   gatewayMetricsHooks{}.Limited,
		Logger:      h.logger.Named("signin"),
	}
	if o.SignInTemplate != "" {
		if cfg.Template, err = signin.ParseTemplateFile(o.SignInTemplate); err != nil {
			return fmt.Errorf("convex_auth: %w", err)
		}
	}
	// Secrets may be placeholders ({env.X}); the Caddyfile leaves them to
	// be replaced here, as JSON config does.
	repl := caddy.NewReplacer()
	secret := func(v string) string { return repl.ReplaceKnown(v, "") }
	for _, p := range o.Providers {
		name := p.name()
		switch p.Type {
		case providerGitHub, providerGoogle, providerOIDC:
			oc := provider.Common{
				Name: name, Label: p.Label, ClientID: secret(p.ClientID), ClientSecret: secret(p.ClientSecret),
				Scopes: p.Scopes, RedirectURL: secret(p.RedirectURL), AuthURL: secret(p.AuthURL), TokenURL: secret(p.TokenURL),
			}
			oidc := provider.OIDCConfig{Common: oc, Issuer: secret(p.Issuer), UserinfoURL: secret(p.UserinfoURL), JWKSURL: secret(p.JWKSURL)}
			if oc.ClientID == "" || oc.ClientSecret == "" {
				return fmt.Errorf("convex_auth: provider %s: client_id or client_secret is empty after replacing placeholders: set the environment variable it names", name)
			}
			var prov provider.OAuth
			switch p.Type {
			case providerGitHub:
				prov, err = provider.NewGitHub(provider.GitHubConfig{Common: oc, APIURL: secret(p.APIURL)})
			case providerGoogle:
				prov, err = provider.NewGoogle(provider.GoogleConfig{OIDCConfig: oidc})
			default:
				prov, err = provider.NewOIDC(oidc)
			}
			if err != nil {
				return fmt.Errorf("convex_auth: %w", err)
			}
			cfg.OAuth = append(cfg.OAuth, prov)
		case providerPassword:
			cfg.Password = &signin.PasswordConfig{MinLength: p.MinLength, MaxAttempts: p.MaxAttempts,
				VerifyEmail: p.VerifyEmail, VerifyTTL: time.Duration(p.VerifyTTL), ResetTTL: time.Duration(p.ResetTTL)}
		case providerEmail:
			cfg.Email = &signin.EmailConfig{Mode: p.Mode, LinkTTL: time.Duration(p.LinkTTL)}
			if p.SMTPHost != "" {
				m := p.mailer(secret)
				if err := m.Validate(); err != nil {
					return fmt.Errorf("convex_auth: provider email: %w", err)
				}
				cfg.Email.Mailer, cfg.Email.MaxSends = m, p.MaxSends
			}
		case providerGuest:
			cfg.Anonymous = &signin.AnonymousConfig{TTL: time.Duration(p.GuestTTL)}
		}
	}
	if m := o.Mail; m != nil {
		mailer := m.mailer(secret)
		if err := mailer.Validate(); err != nil {
			return fmt.Errorf("convex_auth: email: %w", err)
		}
		cfg.Mail = &signin.MailConfig{Mailer: mailer, SiteName: secret(m.SiteName), TemplatesDir: secret(m.Templates), MaxSends: m.MaxSends}
	}
	if len(cfg.OAuth) > 0 {
		// Every instance sharing Caddy's storage seals and opens OAuth flow
		// cookies with the same keys.
		keys, err := seal.LoadOrCreate(ctx, certmagicKeyStorage{ctx.Storage()}, flowKeysName(h.Issuer), seal.DefaultRotateAfter, time.Now())
		if err != nil {
			return fmt.Errorf("convex_auth: OAuth flow keys in Caddy's storage: %w", err)
		}
		cfg.FlowKeys = keys
	}
	h.signInConfig = &cfg
	return nil
}

// flowKeysName is the storage key of the key ring that seals OAuth flow
// cookies: one per issuer.
func flowKeysName(iss string) string { return generatedKeysDir(iss) + "/flow_keys.json" }

// issuerOrigin is the issuer URL's scheme://host[:port].
func issuerOrigin(iss string) string {
	u, err := url.Parse(iss)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
