// Package signin owns the sign-in flow every method shares: start,
// callback, finish (who signed in → a user in the store → the Host starts
// the session), the sign-in page shell, the redirectTo rules and the rate
// limits; and the first-factor methods built on it: OAuth 2.0 and OpenID
// Connect providers (package provider), passwords with verification and
// reset, email links and codes (mail through package mail), and guests.
// Pages built on the service (package account) use its exported page
// shell and steps. No Caddy import: edge is the Host.
package signin

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/seal"
	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/passkey"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// New checks cfg and builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Users == nil || cfg.Host == nil {
		return nil, errors.New("signin: a user store and a host are required")
	}
	if _, err := NormalizeOrigin(cfg.Origin); err != nil {
		return nil, fmt.Errorf("signin: site origin: %w", err)
	}
	if len(cfg.OAuth) == 0 && cfg.Password == nil && cfg.Email == nil && cfg.Anonymous == nil {
		if cfg.Passkey != nil {
			return nil, errors.New("signin: provider passkey needs another sign-in method to sign up with (password, email, a provider): passkeys are added to an account from its account page")
		}
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
	s.cfg.Logger, s.cfg.Now = s.logger, s.now
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
	s.devices, _ = cfg.Users.(session.Devices)
	s.flowAAD = []byte(flowPurpose + "\x00" + cfg.Realm)
	s.formPostAAD = []byte(formPostPurpose + "\x00" + cfg.Realm)
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
		if name == ProviderPassword || name == ProviderEmail || name == ProviderAnonymous || name == ProviderPasskey {
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
			return nil, fmt.Errorf("signin: %w", err)
		}
		s.cfg.Mail = &m
		if s.mailTemplates, err = mail.ParseTemplates(m.TemplatesDir); err != nil {
			return nil, err
		}
		s.siteName = m.SiteName
		if s.siteName == "" {
			s.siteName = s.Site()
		}
	}
	if err := CheckMail(cfg.Password, cfg.Email, s.cfg.Mail != nil); err != nil {
		return nil, fmt.Errorf("signin: %w", err)
	}
	if cfg.Password != nil {
		if cfg.Sessions == nil {
			return nil, errors.New("signin: password sign-in needs the session store (Config.Sessions) to end sessions at a reset or change")
		}
		p := *cfg.Password
		s.cfg.Password = &p
		if err := p.fill(s.cfg.Mail != nil); err != nil {
			return nil, fmt.Errorf("signin: provider password: %w", err)
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
			return nil, fmt.Errorf("signin: provider email: %w", err)
		}
		s.cfg.Email = &e
	}
	if err := s.setUpFactors(cfg); err != nil {
		return nil, err
	}
	if cfg.Anonymous != nil {
		a := *cfg.Anonymous
		if err := a.fill(); err != nil {
			return nil, fmt.Errorf("signin: provider anonymous: %w", err)
		}
		s.cfg.Anonymous = &a
	}
	return s, nil
}

// Handle serves the sign-in page, /auth/signin/<provider>,
// /auth/callback/<provider> and the password's verification and reset
// pages, and reports whether r was one of them.
func (s *Service) Handle(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	switch {
	case path == PathSignIn:
		s.servePage(w, r)
	case path == passkey.ScriptPath && s.rp != nil:
		serveScript(w, r)
	case path == PathPasskeyOptions && s.rp != nil:
		s.servePasskeyOptions(w, r)
	case strings.HasPrefix(path, PathChallenge) && s.serveChallenge(w, r, path):
	case strings.HasPrefix(path, signInPrefix):
		s.serveStart(w, r, path[len(signInPrefix):])
	case strings.HasPrefix(path, callbackPrefix):
		s.serveCallback(w, r, path[len(callbackPrefix):])
	case s.cfg.Password != nil && s.servePasswordPath(w, r, path):
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
	case name == ProviderPasskey && s.rp != nil:
		s.report(r, http.MethodPost, name, s.servePasskeySignIn(w, r))
	case s.oauth[name] != nil:
		s.serveOAuthStart(w, r, s.oauth[name])
	default:
		s.failSignIn(w, r, http.StatusNotFound, "unknown_provider")
	}
}

func (s *Service) serveCallback(w http.ResponseWriter, r *http.Request, name string) {
	switch {
	case name == ProviderEmail && s.cfg.Email != nil:
		s.report(r, http.MethodPost, name, s.serveEmailCallback(w, r))
	case s.oauth[name] != nil:
		s.report(r, http.MethodGet, name, s.serveOAuthCallback(w, r, s.oauth[name]))
	default:
		s.failSignIn(w, r, http.StatusNotFound, "unknown_provider")
	}
}

// servePage renders the sign-in page, or sends a signed-in browser on.
func (s *Service) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.Render(w, r, http.StatusMethodNotAllowed, s.Page(r, "signin", "method"))
		return
	}
	q := r.URL.Query()
	// A guest sees the page (to sign up or in), and so does a browser
	// sent with reauth=1: the step-up page (/auth/reauth) offers a fresh
	// sign-in to users it cannot re-authenticate in place.
	if sess, err := s.cfg.Host.Session(r); err == nil && sess != nil && sess.Provider != ProviderAnonymous &&
		q.Get("error") == "" && q.Get("reauth") == "" {
		Redirect(w, r, s.cfg.Redirects.Resolve(q.Get("redirectTo")))
		return
	}
	mode := "signin"
	if q.Get("mode") == "signup" && s.cfg.Password != nil {
		mode = "signup"
	}
	d := s.Page(r, mode, q.Get("error"))
	d.Email = s.flash(r).Email
	s.Render(w, r, http.StatusOK, d)
}

// servePasswordPath serves the verification and reset paths and reports
// whether path was one of them.
func (s *Service) servePasswordPath(w http.ResponseWriter, r *http.Request, path string) bool {
	pc := s.cfg.Password
	switch {
	case path == PathVerify && pc.VerifyEmail != VerifyOff:
		s.report(r, http.MethodPost, ProviderPassword, s.serveVerify(w, r))
	case path == PathVerifyResend && pc.VerifyEmail != VerifyOff:
		s.serveVerifyResend(w, r)
	case path == PathForgotPassword && s.cfg.Mail != nil:
		s.serveForgot(w, r)
	case path == PathResetPassword && s.cfg.Mail != nil:
		s.report(r, http.MethodPost, ProviderPassword, s.serveReset(w, r))
	default:
		return false
	}
	return true
}

// setUpFactors builds the passkey relying party and checks the second
// factor's policy.
func (s *Service) setUpFactors(cfg Config) error {
	if cfg.Passkey == nil && cfg.SecondFactor == nil {
		return nil
	}
	f, ok := cfg.Users.(session.SecondFactors)
	if !ok {
		return errors.New("signin: passkeys and second factors need a store that keeps them (session.SecondFactors)")
	}
	s.factors = f
	if cfg.SecondFactor != nil {
		sf := *cfg.SecondFactor
		if err := sf.fill(); err != nil {
			return fmt.Errorf("signin: %w", err)
		}
		s.cfg.SecondFactor = &sf
	}
	if cfg.Passkey != nil {
		rp, err := passkey.New(*cfg.Passkey, cfg.Origin, s.SiteName())
		if err != nil {
			return fmt.Errorf("signin: provider passkey: %w", err)
		}
		s.rp = rp
	}
	return nil
}
