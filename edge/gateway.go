// Package edge is the gateway's request path, free of Caddy: it strips
// client-sent copies of what it injects, reads the session cookie, finds the
// session, reuses or mints the Convex token, injects it into the request it
// passes on, guards protected paths, and serves the gateway's own endpoints
// (/auth/session, /auth/token, /auth/signout, and the routes of signin and
// account). It is tested with net/http/httptest; caddymodule adapts it to
// Caddy's handler interfaces.
package edge

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/account"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/internal/ratelog"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// Defaults of Config.
const (
	DefaultSignInURL    = "/auth/signin"
	DefaultAfterSignOut = "/"
	DefaultInjectHeader = "X-Convex-Token"
	// DefaultInjectCookie is the name `inject cookie` suggests; no cookie is
	// injected unless one is configured.
	DefaultInjectCookie = "convex_jwt"
	DefaultTokenReuse   = 5 * time.Second
	// MaxTokenReuse stays under the 10 s that Convex's browser client
	// subtracts from exp-iat when it schedules its refresh.
	MaxTokenReuse = 9 * time.Second
	// MinTokenReuseMargin is the least life a reused token may be left
	// with: enough for server code to finish the Convex calls it makes with
	// it.
	MinTokenReuseMargin = 10 * time.Second

	// defaultTokenCacheSize bounds the tokens kept for reuse; entries live
	// a few seconds, so this is the number of sessions active within that
	// window.
	defaultTokenCacheSize = 100_000
	// storeErrorLogInterval is how often an unreachable store is logged.
	storeErrorLogInterval = 10 * time.Second
	// endpointPrefix is where the gateway's own endpoints live.
	endpointPrefix = "/auth/"
)

// Next is the handler a request goes on to; Caddy's caddyhttp.Handler is one.
type Next interface {
	ServeHTTP(http.ResponseWriter, *http.Request) error
}

// Config is what a Gateway needs. Issuer, Store and Logger are required; the
// other fields have the defaults above.
type Config struct {
	Issuer *issuer.Issuer
	Store  session.Store
	Logger *zap.Logger

	// Cookie is the session cookie.
	Cookie CookieSettings
	// ForwardSessionCookie keeps the session cookie in the request sent
	// upstream.
	ForwardSessionCookie bool
	// IdleTTL ends a session after this long unused; it is reported by
	// /auth/session as part of the session's end.
	IdleTTL time.Duration
	// Protected reports whether a request needs a session. An error counts
	// as protected (fail closed).
	Protected func(*http.Request) (bool, error)
	// SignInURL is where a browser without a session is sent.
	SignInURL string
	// AfterSignOut is where a browser goes after signing out.
	AfterSignOut string
	// InjectHeader carries the token upstream, always. InjectCookie carries
	// it too when set: a name, or a preset (InjectCookieBetterAuth,
	// InjectCookieConvexAuth, InjectCookieConvexAuth2). Default: no cookie, so the token travels
	// once; client copies of DefaultInjectCookie and of every preset's
	// names are removed either way.
	InjectHeader string
	InjectCookie string
	// TokenReuse is how long after its iat a minted token is reused when
	// InjectCookie is a preset: those apps' server helpers hand the token
	// to Convex's browser client, which schedules its refresh exp-iat-10s
	// after receiving it, so it must be young.
	TokenReuse time.Duration
	// TokenReuseMargin applies otherwise (no browser client receives the
	// injected token): it is reused while at least this much of its life
	// is left. Default: half the issuer's token TTL; the TTL itself turns
	// reuse off.
	TokenReuseMargin time.Duration
	// TrustUpstreamSignIn honours Convex-Auth-Sign-In/-Out response headers
	// on responses to same-origin, state-changing requests.
	TrustUpstreamSignIn bool
	// UpstreamSignInPaths, when set, narrows those requests to the paths it
	// matches (an error counts as no match).
	UpstreamSignInPaths func(*http.Request) (bool, error)
	// SignIn, when set, is the sign-in service's configuration; the
	// gateway completes it with its own Host (session cookie, same-origin
	// rule) and serves its routes.
	SignIn *signin.Config
	// Metrics counts what happens; nil counts nothing.
	Metrics Metrics
	// OnAuthenticated is called with every request that carries a session,
	// before it goes on (Caddy sets its placeholders there).
	OnAuthenticated func(*http.Request, *session.Session)
	// Users, when set, is the user store sign-ins check bans in. Default:
	// SignIn's Users, or no ban check when there is no sign-in service.
	Users session.UserStore
	// AdminAPI, when set, serves /auth/admin/ (the site admin API, which
	// checks its own secret); nil leaves those paths to the next handler.
	AdminAPI http.Handler
	// Journal keeps the sign-outs the store could not take in time until
	// they are applied (pending.go). Default: an in-process journal, which
	// a restart forgets; caddymodule passes one in Caddy's storage.
	Journal RevocationJournal
}

// Metrics is what the gateway counts.
type Metrics interface {
	// Request counts one request of the request path by its outcome.
	Request(outcome Outcome)
	// Token counts a token handed out: minted now, or reused.
	Token(minted bool)
	// SignIn counts a finished sign-in attempt.
	SignIn(provider string, ok bool)
}

// Outcome is how the request path ended for one request.
type Outcome string

// Outcomes of the request path.
const (
	OutcomeAuthenticated Outcome = "authenticated" // session found, token injected, forwarded
	OutcomeAnonymous     Outcome = "anonymous"     // no session on an open path, forwarded without a token
	OutcomeRedirected    Outcome = "redirected"    // no session on a protected path, browser sent to sign in
	OutcomeRejected      Outcome = "rejected"      // no session on a protected path, 401
	OutcomeStoreError    Outcome = "store_error"   // the store did not answer: 503, or forwarded without a token
	OutcomeTokenError    Outcome = "token_error"   // a token could not be minted
)

// Outcomes lists every Outcome, for metrics that show them all from the start.
var Outcomes = []Outcome{OutcomeAuthenticated, OutcomeAnonymous, OutcomeRedirected, OutcomeRejected, OutcomeStoreError, OutcomeTokenError}

// UpstreamProvider is the provider of sessions the app signs in through
// Convex-Auth-Sign-In.
const UpstreamProvider = "upstream"

// Gateway is one convex_auth handler's request path. It owns its token cache:
// a new Gateway (a config reload) starts cold.
type Gateway struct {
	cfg          Config
	issuerOrigin string
	injectCookie injectCookie
	tokens       *tokenCache
	signIn       *signin.Service
	account      *account.Pages // with signIn
	storeErrLog  *ratelog.Log
	metrics      Metrics
	unregister   []func()
	// guests, when guests are on, keeps guests in use from expiring.
	guests *guestPolicy
	// pending holds the sign-outs waiting for the store.
	pending *pendingRevocations
	// health answers /auth/health.
	health *healthProbe
}

// New checks cfg, fills in its defaults and builds the gateway. Close
// releases what it registered with the store.
func New(cfg Config) (*Gateway, error) {
	if cfg.Issuer == nil || cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("edge: issuer, store and logger are required")
	}
	if cfg.SignInURL == "" {
		cfg.SignInURL = DefaultSignInURL
	}
	if cfg.AfterSignOut == "" {
		cfg.AfterSignOut = DefaultAfterSignOut
	}
	if cfg.InjectHeader == "" {
		cfg.InjectHeader = DefaultInjectHeader
	}
	if cfg.TokenReuse == 0 {
		cfg.TokenReuse = DefaultTokenReuse
	}
	if cfg.Cookie == (CookieSettings{}) {
		cfg.Cookie, _ = NewCookieSettings("", "", "", "")
	}
	if cfg.IdleTTL == 0 {
		cfg.IdleTTL = session.DefaultIdleTTL
	}
	ttl := cfg.Issuer.Config().TokenTTL
	if cfg.TokenReuseMargin == 0 {
		cfg.TokenReuseMargin = ttl / 2
	}
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.TokenReuseMargin > ttl {
		return nil, fmt.Errorf("token_reuse_margin %s is longer than token_ttl %s: use at most token_ttl (which turns reuse off)", cfg.TokenReuseMargin, ttl)
	}
	u, err := url.Parse(cfg.Issuer.Config().Issuer)
	if err != nil {
		return nil, fmt.Errorf("edge: issuer: %w", err)
	}
	g := &Gateway{
		cfg:          cfg,
		issuerOrigin: u.Scheme + "://" + u.Host,
		injectCookie: resolveInjectCookie(cfg.InjectCookie),
		tokens:       newTokenCache(defaultTokenCacheSize, reusePolicyFor(cfg), cfg.Issuer.Config().Now),
		storeErrLog:  ratelog.New(cfg.Logger, storeErrorLogInterval),
		metrics:      cfg.Metrics,
		health:       &healthProbe{ping: cfg.Store.Ping, now: cfg.Issuer.Config().Now},
	}
	if g.metrics == nil {
		g.metrics = noMetrics{}
	}
	if cfg.Users == nil && cfg.SignIn != nil {
		g.cfg.Users = cfg.SignIn.Users
	}
	if cfg.SignIn != nil {
		sc := traceSignIn(*cfg.SignIn)
		sc.Host = signInHost{g}
		sc.Sessions = cfg.Store
		if sc.Anonymous != nil {
			g.guests = &guestPolicy{users: sc.Users, ttl: sc.Anonymous.TTL}
			if g.guests.ttl == 0 {
				g.guests.ttl = signin.DefaultGuestTTL
			}
		}
		if g.signIn, err = signin.New(sc); err != nil {
			return nil, fmt.Errorf("edge: %w", err)
		}
		g.account = account.New(g.signIn)
	}
	g.unregister = append(g.unregister,
		cfg.Store.OnRevoke(g.tokens.drop),
		// Revocations may have been missed while pub/sub was down.
		cfg.Store.OnRevokeAll(g.tokens.dropAll),
	)
	journal := cfg.Journal
	if journal == nil {
		journal = NewMemoryJournal()
	}
	g.pending = newPendingRevocations(journal, cfg.Store, cfg.Logger, g.tokens.drop)
	g.pending.start()
	return g, nil
}

// reusePolicyFor is the short window when a cookie preset may put the
// injected token in a browser client's hands, the margin otherwise.
func reusePolicyFor(cfg Config) reusePolicy {
	if IsInjectCookiePreset(cfg.InjectCookie) {
		return reusePolicy{maxAge: cfg.TokenReuse}
	}
	return reusePolicy{minLeft: cfg.TokenReuseMargin}
}

// CheckConfig checks the options a Gateway takes as strings and durations,
// each error naming its option; the Caddy layer runs it at validate time.
func CheckConfig(cfg Config) error {
	if r := cfg.TokenReuse; r < 0 || r > MaxTokenReuse {
		return fmt.Errorf("token_reuse %s is out of range: use 0s to %s (Convex's client refreshes 10s before exp)", r, MaxTokenReuse)
	}
	if m := cfg.TokenReuseMargin; m != 0 && m < MinTokenReuseMargin {
		return fmt.Errorf("token_reuse_margin %s is under the %s minimum: server code needs time to use the token", m, MinTokenReuseMargin)
	}
	if cfg.SignInURL != "" && !httprule.IsLocalPath(cfg.SignInURL) && !httprule.IsAbsoluteHTTPURL(cfg.SignInURL) {
		return fmt.Errorf("sign_in_url %q must be a path starting with / or an http(s) URL", cfg.SignInURL)
	}
	if cfg.AfterSignOut != "" && !httprule.IsLocalPath(cfg.AfterSignOut) && !httprule.IsAbsoluteHTTPURL(cfg.AfterSignOut) {
		return fmt.Errorf("after_sign_out %q must be a path starting with / or an http(s) URL", cfg.AfterSignOut)
	}
	if cfg.InjectHeader != "" && !ValidHeaderName(cfg.InjectHeader) {
		return fmt.Errorf("inject header %q is not a valid header name", cfg.InjectHeader)
	}
	if cfg.InjectCookie != "" && !ValidCookieName(cfg.InjectCookie) {
		return fmt.Errorf("inject cookie %q is not a valid cookie name", cfg.InjectCookie)
	}
	return nil
}

// Close unregisters the gateway's revocation hooks from the store, which
// may outlive it (a pooled store across a reload), and stops applying
// pending sign-outs (the journal keeps them for the next gateway).
func (g *Gateway) Close() {
	for _, fn := range g.unregister {
		fn()
	}
	g.unregister = nil
	g.pending.stop()
}

// ServeHTTP strips client copies of what the gateway injects, serves the
// discovery documents and the gateway's own endpoints, and otherwise
// authenticates the request and passes it on.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	g.stripClientCopies(r)

	iss := g.cfg.Issuer
	switch r.URL.Path {
	case iss.DiscoveryPath():
		iss.ServeDiscovery(w, r)
		return nil
	case iss.JWKSPath():
		iss.ServeJWKS(w, r)
		return nil
	}
	if strings.HasPrefix(r.URL.Path, endpointPrefix) && g.serveEndpoint(w, r) {
		return nil
	}
	return g.serveAuthenticated(w, r, next)
}

type noMetrics struct{}

func (noMetrics) Request(Outcome)     {}
func (noMetrics) Token(bool)          {}
func (noMetrics) SignIn(string, bool) {}
