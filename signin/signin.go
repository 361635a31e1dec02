// Package signin signs users in at the edge: OAuth 2.0 and OpenID Connect
// providers (GitHub, Google, any OIDC issuer), email and password, and email
// magic links. It resolves who signed in to a user in the session store and
// hands the user to its Host, which starts the session. It serves the
// sign-in page too. No Caddy import: caddymodule is the Host.
package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/internal/seal"
	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Paths this package serves.
const (
	PathSignIn     = "/auth/signin"
	signInPrefix   = PathSignIn + "/"
	callbackPrefix = "/auth/callback/"
)

// Defaults.
const (
	DefaultAfterSignIn = "/"
	// DefaultFlowTTL is how long an OAuth flow may take from the redirect to
	// the provider to the callback.
	DefaultFlowTTL = 10 * time.Minute
	// providerCallTimeout bounds each call to a provider (token exchange,
	// discovery, user info), and a password form's store calls and hash.
	providerCallTimeout = provider.CallTimeout
	// randomBytes of entropy in state, nonce and magic-link tokens.
	randomBytes = 32
	// realmTagChars of the realm's tag end the flow and link cookie names,
	// as edge ends the session cookie's.
	realmTagChars = 8
	// hashSlotsPerCPU bounds concurrent password hashes (each takes 19 MiB
	// at the default cost).
	hashSlotsPerCPU = 2
)

// Reserved provider names: the built-in password, email and guest methods.
const (
	ProviderPassword  = "password"
	ProviderEmail     = "email"
	ProviderAnonymous = "anonymous"
)

// ErrBanned means the user is banned: every sign-in of it is refused.
var ErrBanned = errors.New("signin: the user is banned")

// Host is the server the package runs in: it knows the session cookie.
type Host interface {
	// SignedIn reports whether the request carries a live session.
	SignedIn(r *http.Request) (bool, error)
	// Session returns the request's live session; nil and no error when
	// there is none.
	Session(r *http.Request) (*session.Session, error)
	// SameOrigin reports whether a form post comes from this site's pages.
	SameOrigin(r *http.Request) bool
	// StartSession ends the request's session, if any, starts a new one for
	// res.User (a new session ID at every sign-in) and sets its cookie on w.
	// It returns an error wrapping ErrBanned, and leaves no session, when
	// the user turns out to be banned.
	StartSession(w http.ResponseWriter, r *http.Request, res Result) error
}

// Result is a finished sign-in, as Host.StartSession gets it.
type Result struct {
	User     *session.User
	Provider string
	// UpgradedGuest: the browser was signed in as the guest User, and
	// User is now signed up in place (same ID, so the same sub).
	UpgradedGuest bool
	// ReplacedUserID is the guest the browser was signed in as when the
	// method's account (or verified email) belonged to another user, User:
	// the browser is now User and the guest stays behind until it
	// expires. The app may move the guest's data over (session.created
	// carries it as replacedUserId).
	ReplacedUserID string
}

// Config configures a Service.
type Config struct {
	// Origin is the site's scheme://host[:port]: redirect URIs and magic
	// links start with it.
	Origin string
	// Redirects says where a browser may go after signing in.
	Redirects RedirectPolicy
	// LinkByEmail joins a new account to the existing user with the same
	// email when both emails are verified.
	LinkByEmail bool
	// OAuth are the OAuth and OIDC providers, in page order.
	OAuth []provider.OAuth
	// Password enables sign-up and sign-in by email and password.
	Password *PasswordConfig
	// Email enables sign-in by magic link or code.
	Email *EmailConfig
	// Mail is the mail setup every provider uses (links, codes,
	// verification, reset). Default: nil, no mail; Email.Mailer, if set,
	// makes one with the defaults.
	Mail *MailConfig
	// Anonymous enables "Continue as guest". Default: nil, no guests.
	Anonymous *AnonymousConfig
	// Sessions is the session store: the account page lists the user's
	// sessions in it, and a password reset or change ends them, naming why
	// (session.WithRevokeReason). The gateway sets it; required with
	// Password. Default: nil, and /auth/account and its forms are left to
	// the app.
	Sessions session.Store
	// Template replaces the built-in sign-in page; see PageData. Nil: the
	// built-in one.
	Template *template.Template
	// Realm is the site's realm. Its tag ends the flow and link-binding
	// cookie names, as it ends the session cookie's, so two realms on one
	// host keep their own sign-ins, and a sealed flow opens only in its
	// realm. Default: "", plain names.
	Realm string
	// Users is the store of users, accounts, links and counters.
	Users session.UserStore
	// FlowKeys seal the OAuth flow cookie. Every instance of a site must
	// share them (caddymodule keeps them in Caddy's storage). Default: a
	// random key ring of this process only.
	FlowKeys Sealer
	// Limits are the rate limits on sign-ups, sign-ins, sends and starts;
	// zero fields take their defaults (see Limits).
	Limits Limits
	// Limiter counts the limits. Default: Users, when it is one (both
	// session stores are; Redis shares the counts between instances).
	Limiter session.Limiter
	// ClientIP is the client's address for per-client limits. Caddy's
	// resolves trusted_proxies. Default: RemoteIP, the connection's peer.
	ClientIP func(r *http.Request) string
	// OnLimited, if set, is told the name of each limit that refuses a
	// request (a counter). Default: nil.
	OnLimited func(limit string)
	// Now is the clock for flow expiry. Default: time.Now.
	Now func() time.Time
	// Host starts sessions.
	Host Host
	// OnResult, if set, is told of every request that finishes a sign-in
	// (an OAuth callback, a magic-link confirmation, a password form) with
	// the provider's name and whether a session was started. It runs on the
	// request's goroutine, so it must be quick (a counter). Default: nil.
	OnResult func(provider string, signedIn bool)
	// Logger gets a line per refused or failed sign-in; never a secret.
	// The Host logs the sign-ins.
	Logger *zap.Logger
}

// Sealer seals values the browser keeps (internal/seal.Keyring).
type Sealer interface {
	Seal(plain, aad []byte) string
	Open(ctx context.Context, sealed string, aad []byte) ([]byte, error)
}

// Service serves the sign-in endpoints.
type Service struct {
	cfg      Config
	flowKeys Sealer
	now      func() time.Time
	limiter  session.Limiter
	// cookieSuffix ends the flow and link cookie names; flowAAD binds a
	// sealed flow to its use and realm.
	cookieSuffix string
	flowAAD      []byte
	clientIP     func(r *http.Request) string
	oauth        map[string]*oauthMethod
	oauthList    []*oauthMethod // page order
	page         *template.Template
	dummyHash    string // verified for unknown accounts, so timing tells nothing
	hashSlots    chan struct{}
	logger       *zap.Logger
	// mailTemplates and siteName are set when mail is configured.
	mailTemplates *mail.Templates
	siteName      string
}

// New checks cfg and builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Users == nil || cfg.Host == nil {
		return nil, errors.New("signin: a user store and a host are required")
	}
	if _, err := NormalizeOrigin(cfg.Origin); err != nil {
		return nil, fmt.Errorf("signin: site origin: %w", err)
	}
	if len(cfg.OAuth) == 0 && cfg.Password == nil && cfg.Email == nil && cfg.Anonymous == nil {
		return nil, errors.New("signin: no provider is configured")
	}
	if cfg.Redirects.AfterSignIn == "" {
		cfg.Redirects.AfterSignIn = DefaultAfterSignIn
	}
	var err error
	s := &Service{cfg: cfg, oauth: map[string]*oauthMethod{}, page: cfg.Template, logger: cfg.Logger}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	s.flowKeys, s.now = cfg.FlowKeys, cfg.Now
	if s.flowKeys == nil {
		s.flowKeys = seal.Ephemeral()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.cfg.Limits.fill(); err != nil {
		return nil, err
	}
	s.limiter, s.clientIP = cfg.Limiter, cfg.ClientIP
	if s.limiter == nil {
		l, ok := cfg.Users.(session.Limiter)
		if !ok {
			return nil, errors.New("signin: the user store is no rate limiter: set Config.Limiter")
		}
		s.limiter = l
	}
	if s.clientIP == nil {
		s.clientIP = RemoteIP
	}
	s.flowAAD = []byte(flowAAD + "\x00" + cfg.Realm)
	if cfg.Realm != "" {
		s.cookieSuffix = "_" + session.RealmTag(cfg.Realm)[:realmTagChars]
	}
	if s.page == nil {
		s.page = defaultTemplate
	}
	for _, p := range cfg.OAuth {
		m := &oauthMethod{OAuth: p, info: p.Info()}
		name := m.info.Name
		if err := provider.ValidateName(name); err != nil {
			return nil, fmt.Errorf("signin: %w", err)
		}
		if name == ProviderPassword || name == ProviderEmail || name == ProviderAnonymous {
			return nil, fmt.Errorf("signin: provider name %q is reserved for the built-in %s sign-in: pick another name", name, name)
		}
		if _, dup := s.oauth[name]; dup {
			return nil, fmt.Errorf("signin: two providers are named %q: give one another name", name)
		}
		s.oauth[name] = m
		s.oauthList = append(s.oauthList, m)
	}
	if cfg.Email != nil && cfg.Email.Mailer != nil {
		if cfg.Mail != nil {
			return nil, errors.New("signin: mail is set twice: keep the email block and drop smtp_* from provider email")
		}
		cfg.Mail = &MailConfig{Mailer: cfg.Email.Mailer, MaxSends: cfg.Email.MaxSends, SendWindow: cfg.Email.SendWindow}
	}
	if cfg.Mail != nil {
		m := *cfg.Mail
		if err := m.fill(); err != nil {
			return nil, err
		}
		s.cfg.Mail = &m
		if s.mailTemplates, err = mail.ParseTemplates(m.TemplatesDir); err != nil {
			return nil, err
		}
		s.siteName = m.SiteName
		if s.siteName == "" {
			s.siteName = s.siteHost()
		}
	}
	if cfg.Email != nil && s.cfg.Mail == nil {
		return nil, errors.New("signin: email sign-in needs mail: an email { smtp_host ... from ... } block")
	}
	if cfg.Password != nil {
		if cfg.Sessions == nil {
			return nil, errors.New("signin: password sign-in needs the session store (Config.Sessions) to end sessions at a reset or change")
		}
		p := *cfg.Password
		s.cfg.Password = &p
		if err := p.fill(s.cfg.Mail != nil); err != nil {
			return nil, err
		}
		dummy, err := HashPassword(randomToken(), p.Argon2)
		if err != nil {
			return nil, err
		}
		s.dummyHash = dummy
		if _, ok := cfg.Users.(session.AccountSecretSetter); !ok {
			return nil, errors.New("signin: password sign-in needs a store that can replace a password (session.AccountSecretSetter) for reset and change")
		}
		s.hashSlots = make(chan struct{}, hashSlotsPerCPU*runtime.GOMAXPROCS(0))
	}
	if cfg.Email != nil {
		e := *cfg.Email
		if err := e.fill(); err != nil {
			return nil, err
		}
		s.cfg.Email = &e
	}
	if cfg.Anonymous != nil {
		if err := cfg.Anonymous.fill(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Handle serves the sign-in page, /auth/signin/<provider> and
// /auth/callback/<provider>, and reports whether r was one of them.
func (s *Service) Handle(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	switch {
	case path == PathSignIn:
		s.servePage(w, r)
	case strings.HasPrefix(path, signInPrefix):
		s.serveStart(w, r, path[len(signInPrefix):])
	case strings.HasPrefix(path, callbackPrefix):
		s.serveCallback(w, r, path[len(callbackPrefix):])
	case s.cfg.Password != nil && s.servePasswordPath(w, r, path):
	case path == PathAccount || strings.HasPrefix(path, accountPrefix):
		if s.cfg.Sessions == nil {
			return false
		}
		s.serveAccount(w, r, strings.TrimPrefix(path, PathAccount))
	case strings.HasPrefix(path, linkPrefix):
		s.serveLinkStart(w, r, path[len(linkPrefix):])
	default:
		return false
	}
	return true
}

func (s *Service) serveStart(w http.ResponseWriter, r *http.Request, name string) {
	switch {
	case name == ProviderPassword && s.cfg.Password != nil:
		s.report(r, http.MethodPost, name, s.servePassword(w, r))
	case name == ProviderEmail && s.cfg.Email != nil:
		s.serveEmailRequest(w, r)
	case name == ProviderAnonymous && s.cfg.Anonymous != nil:
		s.report(r, http.MethodPost, name, s.serveGuest(w, r))
	case s.oauth[name] != nil:
		s.serveOAuthStart(w, r, s.oauth[name])
	default:
		s.render(w, r, http.StatusNotFound, s.pageData(r, "signin", "unknown_provider"))
	}
}

func (s *Service) serveCallback(w http.ResponseWriter, r *http.Request, name string) {
	switch {
	case name == ProviderEmail && s.cfg.Email != nil:
		s.report(r, http.MethodPost, name, s.serveEmailCallback(w, r))
	case s.oauth[name] != nil:
		s.report(r, http.MethodGet, name, s.serveOAuthCallback(w, r, s.oauth[name]))
	default:
		s.render(w, r, http.StatusNotFound, s.pageData(r, "signin", "unknown_provider"))
	}
}

// report tells OnResult how a request that finishes a sign-in of provider
// went. Only method finishes one: other methods (the magic link's GET page,
// a stray HEAD) are refused or lead on, and are not counted.
func (s *Service) report(r *http.Request, method, provider string, signedIn bool) {
	if s.cfg.OnResult != nil && r.Method == method {
		s.cfg.OnResult(provider, signedIn)
	}
}

// servePage renders the sign-in page, or sends a signed-in browser on.
func (s *Service) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.render(w, r, http.StatusMethodNotAllowed, s.pageData(r, "signin", "method"))
		return
	}
	q := r.URL.Query()
	// A guest sees the page (to sign up or in), and so does a browser
	// sent with reauth=1: the account page asks for a fresh sign-in before
	// deleting the account.
	if sess, err := s.cfg.Host.Session(r); err == nil && sess != nil && sess.Provider != ProviderAnonymous &&
		q.Get("error") == "" && q.Get("reauth") == "" {
		s.redirect(w, r, s.cfg.Redirects.Resolve(q.Get("redirectTo")))
		return
	}
	mode := "signin"
	if q.Get("mode") == "signup" && s.cfg.Password != nil {
		mode = "signup"
	}
	s.render(w, r, http.StatusOK, s.pageData(r, mode, q.Get("error")))
}

// redirect sends the browser on after a sign-in step; 303 so that a form
// post becomes a GET.
func (s *Service) redirect(w http.ResponseWriter, r *http.Request, target string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// fail sends the browser back to the sign-in page with an error code.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, code, redirectTo string) {
	q := url.Values{"error": {code}}
	if redirectTo != "" && redirectTo != s.cfg.Redirects.AfterSignIn {
		q.Set("redirectTo", redirectTo)
	}
	s.redirect(w, r, PathSignIn+"?"+q.Encode())
}

// finish starts the session for user, sends the browser to target and
// reports whether the session started. A browser that was a guest is
// told apart: upgraded in place, or replaced by another user.
func (s *Service) finish(w http.ResponseWriter, r *http.Request, user *session.User, provider, target string) bool {
	res := Result{User: user, Provider: provider}
	if guestID := s.guestSessionUser(r); guestID != "" && provider != ProviderAnonymous {
		if guestID == user.ID {
			res.UpgradedGuest = true
		} else {
			res.ReplacedUserID = guestID
		}
	}
	err := ErrBanned
	if !user.Banned {
		err = s.cfg.Host.StartSession(w, r, res)
	}
	if errors.Is(err, ErrBanned) {
		s.logger.Info("sign-in refused: the user is banned", zap.String("provider", provider), zap.String("user_id", user.ID))
		s.render(w, r, http.StatusForbidden, s.pageData(r, "signin", "banned"))
		return false
	}
	if err != nil {
		s.logger.Warn("sign-in could not start a session", zap.String("provider", provider), zap.Error(err))
		s.render(w, r, http.StatusServiceUnavailable, s.pageData(r, "signin", "unavailable"))
		return false
	}
	s.redirect(w, r, s.cfg.Redirects.Resolve(target))
	return true
}

// readForm checks a posted sign-in form: POST, same origin, small.
func (s *Service) readForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.render(w, r, http.StatusMethodNotAllowed, s.pageData(r, "signin", "method"))
		return false
	}
	if !s.cfg.Host.SameOrigin(r) {
		s.render(w, r, http.StatusForbidden, s.pageData(r, "signin", "cross_site"))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, httprule.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "bad_form"))
		return false
	}
	return true
}

// rateLimit is a per-address limit on a sign-in step, counted in the store.
type rateLimit struct {
	flow   string // names the step in the log: "email sign-in"
	key    string // the store's counter
	max    int
	window time.Duration
	reason string // the log's reason for a refusal
	code   string // the page's error code for a refusal
}

// overLimit counts one hit of l. When the store fails or the count is over
// the limit, it logs why, answers through again and returns true.
func (s *Service) overLimit(ctx context.Context, l rateLimit, again func(status int, code string)) bool {
	allowed, err := s.cfg.Users.RateHit(ctx, l.key, l.max, l.window)
	if err != nil {
		s.logger.Warn(l.flow+" could not reach the store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return true
	}
	if !allowed {
		s.logger.Info(l.flow + " refused: " + l.reason)
		again(http.StatusTooManyRequests, l.code)
		return true
	}
	return false
}

func storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
}

// randomToken is 256 random bits, base64url.
func randomToken() string {
	var b [randomBytes]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (Go 1.24+ crashes instead)
	return b64url(b[:])
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
