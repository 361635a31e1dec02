package signin

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/passkey"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Defaults.
const (
	// DefaultFlowTTL is how long an OAuth flow may take from the redirect to
	// the provider to the callback.
	DefaultFlowTTL = 10 * time.Minute
	// providerCallTimeout bounds each call to a provider (token exchange,
	// discovery, user info), and a password form's store calls and hash.
	providerCallTimeout = provider.CallTimeout
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
	// AMR are the RFC 8176 methods of the sign-in when the method says
	// (a passkey: hwk or swk, mfa when it verified its user); nil: the
	// provider's own.
	AMR []string
	// TrustDevice: the browser passed a second-factor challenge asking to
	// be remembered (remember_device), so its next sign-ins skip it.
	TrustDevice bool
	// MaxTTL, when set, caps the session's absolute lifetime: an
	// admission rule admitted the user, and checks them again at the next
	// sign-in (the provider's admission_ttl).
	MaxTTL time.Duration
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
	// Passkey enables passkeys: "Sign in with a passkey", adding them on
	// the account page, and a passkey as the second factor. Its relying
	// party's ID is Origin's host. Default: nil, no passkeys.
	Passkey *passkey.Config
	// SecondFactor is the second factor's policy and the key that seals
	// TOTP secrets. Default: nil, second factors optional, and no TOTP
	// (there is no key to seal its secrets).
	SecondFactor *SecondFactorConfig
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
	// sealed flow to its use and realm, formPostAAD a relayed form post.
	cookieSuffix string
	flowAAD      []byte
	formPostAAD  []byte
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
	// linker finishes link flows (HandleLinks).
	linker Linker
	// reauther finishes re-authentication flows (HandleReauth).
	reauther Reauthenticator
	// rp is the passkey relying party, with provider passkey; factors the
	// store of second factors.
	rp      *passkey.RP
	factors session.SecondFactors
	// devices remembers browsers (device.go); nil when Users does not.
	devices session.Devices
}

// oauthMethod is an OAuth provider with its Info, read once.
type oauthMethod struct {
	provider.OAuth
	info provider.Info
}

// Link is a provider account that came back to a flow BeginLink started,
// for the user and session that began it.
type Link struct {
	Provider  provider.Info
	UserID    string
	SessionID string
	Identity  provider.Identity
}

// Linker finishes link flows: it binds the account and answers the
// callback, reporting whether the link was made. The account page is one.
type Linker interface {
	FinishLink(w http.ResponseWriter, r *http.Request, l Link) bool
}

// Config is the configuration the service runs with: cfg with every
// default filled in (Now, Logger, Password's defaults...), for the pages
// built on the service.
func (s *Service) Config() Config { return s.cfg }

// Providers are the OAuth and OIDC providers, in page order.
func (s *Service) Providers() []provider.Info {
	out := make([]provider.Info, len(s.oauthList))
	for i, p := range s.oauthList {
		out[i] = p.info
	}
	return out
}

// Provider is the OAuth or OIDC provider named name.
func (s *Service) Provider(name string) (provider.Info, bool) {
	if p := s.oauth[name]; p != nil {
		return p.info, true
	}
	return provider.Info{}, false
}

// Site is the site's host, e.g. app.example.com.
func (s *Service) Site() string {
	return strings.TrimPrefix(strings.TrimPrefix(s.cfg.Origin, "https://"), "http://")
}
