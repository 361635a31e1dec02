package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/convex-auth/caddy-convex-auth/internal/seal"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// SignInOptions configure the gateway's own sign-in: the page at
// /auth/signin, /auth/signin/<provider> and /auth/callback/<provider>.
// They are Handler's sign_in field.
type SignInOptions struct {
	// Providers are the sign-in methods, in page order: modules of the
	// http.convex_auth.providers namespace, each an object whose "type"
	// names the module (github, google, oidc, password, email, anonymous,
	// or a third party's). Default: none, and the gateway serves no
	// sign-in endpoints (sign_in_url may point at the app's own page).
	Providers []json.RawMessage `json:"providers,omitempty" caddy:"namespace=http.convex_auth.providers inline_key=type"`

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

	// SecondFactor is the second factor's policy and the key that seals
	// TOTP secrets (secondfactor.go). Default: optional, with a key
	// generated in Caddy's storage.
	SecondFactor *SecondFactorOptions `json:"second_factor,omitempty"`
}

// signInOptions returns the sign-in options, creating them for the
// Caddyfile parser.
func (h *Handler) signInOptions() *SignInOptions {
	if h.SignIn == nil {
		h.SignIn = new(SignInOptions)
	}
	return h.SignIn
}

// checkSignIn validates the sign-in options and the providers' own,
// without building anything.
func (h *Handler) checkSignIn() error {
	o := h.SignIn
	if o == nil {
		return nil
	}
	providers, err := h.providerModules()
	if err != nil {
		return err
	}
	if len(providers) == 0 {
		if o.AfterSignIn != "" || o.LinkByEmail || len(o.RedirectOrigins) > 0 || o.SignInTemplate != "" || o.Limits != nil || o.Mail != nil || o.SecondFactor != nil {
			return errors.New("convex_auth: after_sign_in, link_by_email, redirect_origins, sign_in_template, limits, email and second_factor need at least one provider")
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
	if o.SecondFactor != nil {
		if err := o.SecondFactor.check(); err != nil {
			return fmt.Errorf("convex_auth: %w", err)
		}
	}
	var methods signin.Config
	mail := o.Mail != nil
	seen := map[string]bool{}
	for _, p := range providers {
		builtin, ok := p.(builtinProvider)
		if !ok {
			continue // checked when it is provisioned
		}
		name := builtin.providerName()
		if seen[name] {
			return fmt.Errorf("convex_auth: two providers are named %q: give one a name, e.g. provider oidc okta { ... }", name)
		}
		seen[name] = true
		if err := builtin.Validate(); err != nil {
			return fmt.Errorf("convex_auth: provider %s: %w", name, err)
		}
		if m, ok := p.(builtinMethod); ok {
			m.addTo(&methods)
		}
		if e, ok := p.(*EmailProvider); ok && e.ownMail() {
			if mail {
				return errors.New("convex_auth: provider email: smtp_host is set here and in the email block: keep the email block and drop smtp_* here")
			}
			mail = true
		}
	}
	if err := signin.CheckMail(methods.Password, methods.Email, mail); err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	return nil
}

// provisionSignIn loads the providers and builds the sign-in service's
// configuration when there are any.
func (h *Handler) provisionSignIn(ctx caddy.Context) error {
	o := h.SignIn
	if len(h.loadedProviders) == 0 {
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
	for _, p := range h.loadedProviders {
		switch p := p.(type) {
		case OAuthProvider:
			cfg.OAuth = append(cfg.OAuth, p.OAuthProvider())
		case builtinMethod:
			p.addTo(&cfg)
		}
	}
	if o.Mail != nil {
		if cfg.Mail, err = o.Mail.config(); err != nil {
			return fmt.Errorf("convex_auth: email: %w", err)
		}
	}
	if err := h.provisionSecondFactor(ctx, &cfg); err != nil {
		return err
	}
	if len(cfg.OAuth) > 0 || cfg.Passkey != nil {
		// Every instance sharing Caddy's storage seals and opens OAuth flow
		// and passkey ceremony cookies with the same keys.
		keys, err := seal.LoadOrCreate(ctx, certmagicKeyStorage{ctx.Storage()}, flowKeysName(h.Issuer), seal.DefaultRotateAfter, time.Now())
		if err != nil {
			return fmt.Errorf("convex_auth: flow keys in Caddy's storage: %w", err)
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

// providerModules are the configured providers: the loaded ones once
// Provision has loaded them, else decoded from the config.
func (h *Handler) providerModules() ([]caddy.Module, error) {
	if h.loadedProviders != nil {
		return h.loadedProviders, nil
	}
	if h.SignIn == nil {
		return nil, nil
	}
	var mods []caddy.Module
	for _, raw := range h.SignIn.Providers {
		mod, err := decodeProvider(raw)
		if err != nil {
			return nil, fmt.Errorf("convex_auth: %w", err)
		}
		mods = append(mods, mod)
	}
	return mods, nil
}

// loadProviders loads and provisions the provider modules.
func (h *Handler) loadProviders(ctx caddy.Context) error {
	if h.SignIn == nil || len(h.SignIn.Providers) == 0 {
		return nil
	}
	loaded, err := ctx.LoadModule(h.SignIn, "Providers")
	if err != nil {
		return fmt.Errorf("convex_auth: sign-in providers: %w", err)
	}
	for _, m := range loaded.([]any) {
		mod := m.(caddy.Module)
		switch mod.(type) {
		case OAuthProvider, builtinMethod:
		default:
			return fmt.Errorf("convex_auth: provider module %s is no sign-in method: it must implement caddymodule.OAuthProvider", mod.CaddyModule().ID)
		}
		h.loadedProviders = append(h.loadedProviders, mod)
	}
	return nil
}
