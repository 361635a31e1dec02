// Package caddymodule is the Caddy glue of convex_auth: the
// http.handlers.convex_auth module and the sign-in provider modules
// (http.convex_auth.providers.*), their Caddyfile syntax, provisioning,
// metrics registration and CLI commands. The logic lives in Caddy-free
// packages: edge/ (the request path), issuer/, session/, signin/,
// provider/, mail/ and account/.
package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/internal/sharedstorage"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults for the options below.
const (
	DefaultApplicationID = issuer.DefaultAudience
	DefaultSignInURL     = edge.DefaultSignInURL
	DefaultAfterSignOut  = edge.DefaultAfterSignOut
	DefaultInjectHeader  = edge.DefaultInjectHeader
	DefaultInjectCookie  = edge.DefaultInjectCookie
	DefaultTokenReuse    = edge.DefaultTokenReuse
	MaxTokenReuse        = edge.MaxTokenReuse
)

// Handler is the convex_auth authentication gateway. It serves the issuer's
// discovery and JWKS documents, finds the session behind the request's cookie,
// injects a short-lived Convex JWT into the request it forwards, and guards
// protected paths.
type Handler struct {
	// Issuer is the `iss` claim and the discovery document's `issuer`, used
	// byte for byte. Required; an http(s) URL, usually the site's origin.
	Issuer string `json:"issuer,omitempty"`

	// ApplicationID is the `aud` claim, the applicationID in Convex's
	// auth.config.ts. Default: "convex".
	ApplicationID string `json:"application_id,omitempty"`

	// Realm names the user base: every session, user, account, sign-in
	// flow, email link and rate counter belongs to one realm, and a cookie
	// of another realm is no session here. Handlers with the same realm
	// share users on purpose (app.example.com and www.example.com); give
	// them the same store too (the same redis, or both none in one Caddy).
	// It also names the default Redis key prefix and session cookie.
	// Default: the issuer and application_id, so changing either starts a
	// new user base.
	Realm string `json:"realm,omitempty"`

	// SigningKey says where the PKCS#8 PEM private key comes from. Default:
	// none, a key is generated on first start and kept in Caddy's storage.
	SigningKey *SigningKeySource `json:"signing_key,omitempty"`

	// Algorithm is RS256, EdDSA or ES256. Default: the one the key fits, and
	// EdDSA for a generated key (issuer.DefaultGeneratedAlgorithm; Convex's
	// static customJwt form needs ES256 or RS256).
	Algorithm string `json:"algorithm,omitempty"`

	// KeyRotation is how long each generated key signs before the next one
	// takes over (generated keys only; with signing_key it is an error).
	// Default: 0, rotation only on `caddy convex-auth rotate-key`. At least
	// key_publish_lead.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

	// KeyPublishLead is how long the next generated key is published in the
	// JWKS before it signs, so verifiers caching the JWKS know it first.
	// Default: 1m; minimum 30s (the JWKS's max-age plus
	// stale-while-revalidate).
	KeyPublishLead caddy.Duration `json:"key_publish_lead,omitempty"`

	// TokenTTL is the lifetime of a minted JWT. Default: 5m; minimum 30s.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`

	// Subject is the `sub` format: "user" (the user ID) or "user_session"
	// ("userId;sessionId"). Default: "user".
	Subject string `json:"subject,omitempty"`

	// Redis configures the shared session store. Default: none, an
	// in-process store for development only.
	Redis *RedisConfig `json:"redis,omitempty"`

	// Cookie configures the session cookie. Default: see CookieConfig.
	Cookie *CookieConfig `json:"cookie,omitempty"`

	// SessionTTL is a session's absolute lifetime. Default: 720h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// IdleTTL ends a session after this long unused. Default: 168h.
	IdleTTL caddy.Duration `json:"idle_ttl,omitempty"`

	// MaxSessionsPerUser is how many sessions one user may have; a new one
	// past it ends the least recently used (session.revoked, reason
	// limit). Default: 50.
	MaxSessionsPerUser int `json:"max_sessions_per_user,omitempty"`

	// Protect lists path patterns (Caddy path-matcher syntax, e.g.
	// "/loggedin*") that require a session. Default: none.
	Protect []string `json:"protect,omitempty"`

	// SignInURL is where a browser without a session is sent, with
	// ?redirectTo=<path and query>. Default: "/auth/signin".
	SignInURL string `json:"sign_in_url,omitempty"`

	// AfterSignOut is where a browser goes after signing out. Default: "/".
	AfterSignOut string `json:"after_sign_out,omitempty"`

	// InjectHeader is the request header that carries the JWT upstream on
	// every authenticated request. Default: "X-Convex-Token".
	InjectHeader string `json:"inject_header,omitempty"`

	// InjectCookie is a request cookie that also carries the JWT upstream:
	// a cookie name (e.g. "convex_jwt"), or the preset "better-auth"
	// (better-auth.convex_jwt,
	// __Secure- prefixed on secure requests) or "convex-auth"
	// (__convexAuthJWT, __Host- prefixed unless the Host header has
	// "localhost:<port>" or "127.0.0.1:<port>", Convex Auth's own test); see
	// docs/server-helpers.md. Default: none, the header alone carries the
	// token (once per request, not twice); client-sent convex_jwt and
	// preset cookies are removed either way.
	InjectCookie string `json:"inject_cookie,omitempty"`

	// TokenReuse is how long after its iat an injected token may be reused
	// for the same session when inject_cookie is a preset (better-auth,
	// convex-auth), whose server helpers hand the token to Convex's browser
	// client. Default: 5s; at most 9s.
	TokenReuse caddy.Duration `json:"token_reuse,omitempty"`

	// TokenReuseMargin applies without a preset, when no browser client
	// receives the injected token: it is reused while at least this much
	// of its life is left. Default: half of token_ttl; at least 10s; equal
	// to token_ttl turns reuse off.
	TokenReuseMargin caddy.Duration `json:"token_reuse_margin,omitempty"`

	// TrustUpstreamSignIn lets the upstream sign a user in with a
	// Convex-Auth-Sign-In response header and out with Convex-Auth-Sign-Out,
	// on responses to same-origin POST (or other state-changing) requests
	// only. Default: false.
	TrustUpstreamSignIn bool `json:"trust_upstream_sign_in,omitempty"`

	// UpstreamSignInPaths narrows trust_upstream_sign_in to these path
	// patterns (Caddy path-matcher syntax, e.g. "/api/auth/*"). Default:
	// none, every path.
	UpstreamSignInPaths []string `json:"upstream_sign_in_paths,omitempty"`

	// SignIn is the gateway's own sign-in: its providers and options
	// (signin.go). Default: none, and the gateway serves no sign-in
	// endpoints.
	SignIn *SignInOptions `json:"sign_in,omitempty"`

	// Events sends signed user and session events to the app (events.go,
	// docs/events.md). Default: none, no events.
	Events *EventsConfig `json:"events,omitempty"`
	// AdminAPI enables the site admin API at /auth/admin/ (docs/admin-api.md),
	// guarded by a Bearer secret. Default: none, the site API is off; the
	// operator API on Caddy's admin endpoint is always there.
	AdminAPI *AdminAPIConfig `json:"admin_api,omitempty"`

	gateway      *edge.Gateway
	issuer       *issuer.Issuer
	store        session.Store
	storeKey     string
	realm        string         // Realm or its default
	signInConfig *signin.Config // nil without providers
	logger       *zap.Logger
	keyring      *issuer.Keyring // generated keys, loaded in Provision
	rotator      *keyRotator     // keeps the issuer on the stored keyring
	rotatorKey   string
	eventsKey    string                // the delivery pool's key, with events
	releaseRealm func()                // the realm's entry in liveRealms
	storageUse   *sharedstorage.Member // this process's record of its storage, in the realm's store

	// loadedProviders are the sign-in provider modules, once loaded.
	loadedProviders []caddy.Module
}

// SigningKeySource names where the signing key's PEM comes from.
type SigningKeySource struct {
	// From is "file" or "env". Required.
	From string `json:"from,omitempty"`
	// Path is the PEM file, when From is "file". Default: none; required
	// with file.
	Path string `json:"path,omitempty"`
	// Env is the environment variable holding the PEM, when From is "env".
	// The one-line form with literal \n escapes is accepted. Default: none;
	// required with env.
	Env string `json:"env,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.convex_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and builds the issuer, the store and the caches.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.ApplicationID == "" {
		h.ApplicationID = DefaultApplicationID
	}
	if h.TokenTTL == 0 {
		h.TokenTTL = caddy.Duration(issuer.DefaultTokenTTL)
	}
	if h.Subject == "" {
		h.Subject = string(issuer.SubjectUser)
	}
	if h.SessionTTL == 0 {
		h.SessionTTL = caddy.Duration(session.DefaultSessionTTL)
	}
	if h.IdleTTL == 0 {
		h.IdleTTL = caddy.Duration(session.DefaultIdleTTL)
	}
	// sign_in_url, after_sign_out, inject and token_reuse get their
	// defaults in edge.New.
	if h.Cookie == nil {
		h.Cookie = new(CookieConfig)
	}
	// Checks that must pass before any state is built; Validate repeats them.
	if err := h.checkConfig(); err != nil {
		return err
	}
	if err := h.loadProviders(ctx); err != nil {
		return err
	}
	if err := registerMetrics(ctx, h.providerNames()); err != nil {
		return fmt.Errorf("convex_auth: registering metrics: %w", err)
	}
	h.realm = h.Realm
	if h.realm == "" {
		h.realm = session.DefaultRealm(h.Issuer, h.ApplicationID)
	}
	cookie, err := h.Cookie.settings()
	if err != nil {
		return err
	}
	cookie = cookie.WithRealm(h.realm)
	protect := caddyhttp.MatchPath(h.Protect)
	if err := protect.Provision(ctx); err != nil {
		return fmt.Errorf("convex_auth: protect: %w", err)
	}

	key, err := h.loadSigningKey(ctx)
	if err != nil {
		return err
	}
	h.issuer, err = issuer.New(issuer.Config{
		Issuer:   h.Issuer,
		Audience: h.ApplicationID,
		TokenTTL: time.Duration(h.TokenTTL),
		Subject:  issuer.SubjectFormat(h.Subject),
	}, key)
	if err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	if err := h.provisionKeyring(ctx); err != nil {
		return err
	}

	pooled, poolKey, err := acquireStore(h.Redis, session.Options{
		SessionTTL: time.Duration(h.SessionTTL),
		IdleTTL:    time.Duration(h.IdleTTL),
		// A session in use must be touched well before it could idle out.
		TouchInterval:      min(session.DefaultTouchInterval, time.Duration(h.IdleTTL)/2),
		Realm:              h.realm,
		MaxSessionsPerUser: h.MaxSessionsPerUser,
	}, h.logger)
	if err != nil {
		return err
	}
	h.storeKey = poolKey
	var st session.Store = pooled.Store
	if h.Events != nil {
		if st, err = h.provisionEvents(ctx, st); err != nil {
			return err
		}
	}
	h.store = meteredStore{st}
	h.logger.Info("serving realm",
		zap.String("realm", h.realm),
		zap.String("realm_tag", session.RealmTag(h.realm)),
		zap.Bool("default_realm", h.Realm == ""),
		zap.String("issuer", h.Issuer))
	if err := h.provisionSignIn(ctx); err != nil {
		return err
	}
	if err := h.recordStorageUse(ctx, pooled.Store); err != nil {
		return err
	}
	adminAPI, err := h.provisionControl()
	if err != nil {
		return err
	}
	var protected, signInPaths func(*http.Request) (bool, error)
	if len(protect) > 0 {
		protected = protect.MatchWithError
	}
	if len(h.UpstreamSignInPaths) > 0 {
		m := caddyhttp.MatchPath(h.UpstreamSignInPaths)
		if err := m.Provision(ctx); err != nil {
			return fmt.Errorf("convex_auth: trust_upstream_sign_in paths: %w", err)
		}
		signInPaths = m.MatchWithError
	}
	h.gateway, err = edge.New(edge.Config{
		Issuer:               h.issuer,
		Store:                h.store,
		Logger:               h.logger,
		Cookie:               cookie,
		ForwardSessionCookie: h.Cookie.ForwardToUpstream,
		IdleTTL:              time.Duration(h.IdleTTL),
		Protected:            protected,
		SignInURL:            h.SignInURL,
		AfterSignOut:         h.AfterSignOut,
		InjectHeader:         h.InjectHeader,
		InjectCookie:         h.InjectCookie,
		TokenReuse:           time.Duration(h.TokenReuse),
		TokenReuseMargin:     time.Duration(h.TokenReuseMargin),
		TrustUpstreamSignIn:  h.TrustUpstreamSignIn,
		UpstreamSignInPaths:  signInPaths,
		SignIn:               h.signInConfig,
		Metrics:              gatewayMetricsHooks{},
		OnAuthenticated:      setUserPlaceholders,
		AdminAPI:             adminAPI,
		Users:                h.userStore(),
		Journal:              storageJournal{ctx.Storage(), revocationsDir(h.realm)},
	})
	if err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	return h.checkConfig()
}

// checkConfig holds every check that needs no state, each naming its option.
func (h *Handler) checkConfig() error {
	if h.Issuer == "" {
		return errors.New("convex_auth: issuer is required: set it to the site's origin, e.g. issuer https://app.example.com")
	}
	u, err := url.Parse(h.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("convex_auth: issuer %q is not an http(s) URL without query or fragment: use e.g. https://app.example.com", h.Issuer)
	}
	if h.ApplicationID != "" && strings.TrimSpace(h.ApplicationID) != h.ApplicationID {
		return fmt.Errorf("convex_auth: application_id %q has surrounding spaces: remove them", h.ApplicationID)
	}
	if h.Realm != "" {
		if err := session.CheckRealm(h.Realm); err != nil {
			return fmt.Errorf("convex_auth: %w", err)
		}
	}
	if h.Algorithm != "" {
		if _, err := issuer.ParseAlgorithm(h.Algorithm); err != nil {
			return fmt.Errorf("convex_auth: algorithm: %w", err)
		}
	}
	if ttl := time.Duration(h.TokenTTL); ttl != 0 && ttl < issuer.MinTokenTTL {
		return fmt.Errorf("convex_auth: token_ttl %s is under the %s minimum: Convex's browser client refreshes 10s before expiry, so use 5m or so", ttl, issuer.MinTokenTTL)
	}
	ttl := time.Duration(h.TokenTTL)
	if ttl == 0 {
		ttl = issuer.DefaultTokenTTL
	}
	if m := time.Duration(h.TokenReuseMargin); m > ttl {
		return fmt.Errorf("convex_auth: token_reuse_margin %s is longer than token_ttl %s: use at most token_ttl (which turns reuse off)", m, ttl)
	}
	switch issuer.SubjectFormat(h.Subject) {
	case "", issuer.SubjectUser, issuer.SubjectUserSession:
	default:
		return fmt.Errorf("convex_auth: subject %q is unknown: use user or user_session", h.Subject)
	}
	if src := h.SigningKey; src != nil {
		switch {
		case src.From == "file" && src.Path != "":
		case src.From == "env" && src.Env != "":
		default:
			return errors.New("convex_auth: signing_key must be `file <path>` or `env <VARIABLE>`")
		}
	}
	if h.SessionTTL < 0 || h.IdleTTL < 0 {
		return errors.New("convex_auth: session_ttl and idle_ttl must be positive durations")
	}
	if err := (session.Options{MaxSessionsPerUser: h.MaxSessionsPerUser}).Validate(); err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	if len(h.UpstreamSignInPaths) > 0 && !h.TrustUpstreamSignIn {
		return errors.New("convex_auth: upstream_sign_in_paths needs trust_upstream_sign_in")
	}
	for _, p := range h.UpstreamSignInPaths {
		if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
			return fmt.Errorf("convex_auth: trust_upstream_sign_in path %q must start with / (e.g. /api/auth/*)", p)
		}
	}
	if err := edge.CheckConfig(edge.Config{
		TokenReuse:       time.Duration(h.TokenReuse),
		TokenReuseMargin: time.Duration(h.TokenReuseMargin),
		SignInURL:        h.SignInURL,
		AfterSignOut:     h.AfterSignOut,
		InjectHeader:     h.InjectHeader,
		InjectCookie:     h.InjectCookie,
	}); err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	if h.Cookie != nil {
		if _, err := h.Cookie.settings(); err != nil {
			return err
		}
	}
	if h.Redis != nil {
		if _, err := h.Redis.sessionConfig(); err != nil {
			return err
		}
	}
	if err := h.checkKeyRotation(); err != nil {
		return err
	}
	if h.Events != nil {
		if err := h.Events.check(); err != nil {
			return err
		}
	}
	if h.AdminAPI != nil {
		if _, err := h.AdminAPI.secret(); err != nil {
			return err
		}
	}
	return h.checkSignIn()
}

// Cleanup releases the gateway, the store and the key poller (the last two
// are shared across config reloads).
func (h *Handler) Cleanup() error {
	if h.gateway != nil {
		h.gateway.Close()
	}
	if h.releaseRealm != nil {
		h.releaseRealm()
	}
	if err := h.releaseKeyRotator(); err != nil {
		h.logger.Warn("stopping the signing key poller", zap.Error(err))
	}
	if err := h.releaseEvents(); err != nil {
		h.logger.Warn("stopping event delivery", zap.Error(err))
	}
	if h.storageUse != nil {
		h.storageUse.Leave()
		h.storageUse = nil
	}
	if h.storeKey != "" {
		return releaseStore(h.storeKey)
	}
	return nil
}

// ServeHTTP runs the request path (edge.Gateway).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.gateway.ServeHTTP(w, r, next)
}

// setUserPlaceholders exposes the session's user as {http.auth.user.*}.
func setUserPlaceholders(r *http.Request, sess *session.Session) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	repl.Set("http.auth.user.id", sess.UserID)
	repl.Set("http.auth.user.email", sess.Profile.Email)
	repl.Set("http.auth.user.name", sess.Profile.Name)
	repl.Set("http.auth.user.session_id", sess.ID)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
