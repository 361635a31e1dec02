package account

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/smtptest"
	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/signin"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// The harness is signin/signintest's.
type (
	browser      = signintest.Browser
	whoami       = signintest.Whoami
	storeMaker   = signintest.StoreMaker
	smtpReceiver = smtptest.Server
)

var (
	newBrowser  = signintest.NewBrowser
	succeeded   = signintest.Succeeded
	location    = signintest.Location
	eachStore   = signintest.EachStore
	agent       = signintest.Agent
	waitMails   = signintest.WaitMails
	linkAndCode = signintest.LinkAndCode
	tokenOf     = signintest.TokenOf
	mailLink    = signintest.MailLink
)

const (
	testSessionCookie = signintest.SessionCookie
	opEmail           = signintest.OPEmail

	adaEmail = "ada@example.com"
	adaPass  = "correct horse"
	newPass  = "battery staple"
)

// testArgon2 keeps the tests fast; production hashes use the defaults.
var testArgon2 = signin.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// testHost is the Host a real server would be: a session cookie over the
// store.
type testHost struct {
	*signintest.Host
	// results, if set, hears every StartSession.
	results func(signin.Result)
}

func (h *testHost) StartSession(w http.ResponseWriter, r *http.Request, res signin.Result) error {
	if h.results != nil {
		h.results(res)
	}
	return h.Start(w, r, res.User, res.Provider)
}

// env is a site with the sign-in service and the account pages on it, in
// front of a page that shows who is signed in.
type env struct {
	t      *testing.T
	origin string
	svc    *signin.Service
	store  signintest.Store
	clock  *testclock.Clock
	host   *testHost
	// changes records what the site announced (user.updated), when the
	// test asked for it (newFactorEnv).
	changes *signintest.ChangeLog
}

// newEnvOn is a site on the store mk makes (nil: in-process), configured
// by configure.
func newEnvOn(t *testing.T, mk storeMaker, configure func(c *signin.Config, origin string)) *env {
	t.Helper()
	site := signintest.NewSite(t, mk)
	e := &env{t: t, origin: site.Origin, store: site.Store, clock: site.Clock, host: &testHost{Host: site.Host}}
	cfg := signin.Config{Origin: e.origin, Users: e.store, Sessions: e.store, Host: e.host, Now: e.clock.Now}
	cfg.Redirects, _ = signin.NewRedirectPolicy("/", nil)
	configure(&cfg, e.origin)
	svc, err := signin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	pages := New(svc)
	site.Serve(func(w http.ResponseWriter, r *http.Request) bool { return svc.Handle(w, r) || pages.Handle(w, r) })
	return e
}

func (e *env) signUp(b *browser, email, password string) (*http.Response, string) {
	return b.Post(e.origin+"/auth/signin/password", signintest.PasswordForm("signup", email, password, ""))
}

func (e *env) signIn(b *browser, email, password string) (*http.Response, string) {
	return b.Post(e.origin+"/auth/signin/password", signintest.PasswordForm("signin", email, password, ""))
}

// signsIn reports whether a fresh browser signs in with the password.
func (e *env) signsIn(email, password string) bool {
	resp, _ := e.signIn(newBrowser(e.t), email, password)
	return succeeded(resp)
}

// forgot asks for a reset of email and returns the page.
func (e *env) forgot(b *browser, email string) (*http.Response, string) {
	return b.Post(e.origin+signin.PathForgotPassword, url.Values{"email": {email}})
}

// pageShows reports whether the sign-in page holds the message of code.
func (e *env) pageShows(page, code string) bool {
	msg := e.svc.PageFor("signin", code, "").Error
	return msg != "" && strings.Contains(page, template.HTMLEscapeString(msg))
}

// newMailEnv is a site with password (verify as given) and email sign-in,
// one mail setup for both, on the store mk makes.
func newMailEnv(t *testing.T, mk storeMaker, verify string) (*env, *smtpReceiver) {
	t.Helper()
	rcv := signintest.StartSMTP(t, nil, "", "")
	e := newEnvOn(t, mk, func(c *signin.Config, origin string) {
		c.Mail = &signin.MailConfig{Mailer: signintest.Mailer(rcv), SiteName: "Example App", QuietNewDevices: true}
		c.Password = &signin.PasswordConfig{Argon2: testArgon2, VerifyEmail: verify}
		c.Email = &signin.EmailConfig{}
	})
	return e, rcv
}

// accountEnv is a site with passwords, guests and the three OAuth
// providers, recording every session start.
type accountEnv struct {
	*env
	op      *signintest.OP
	mu      sync.Mutex
	started []signin.Result
}

func newAccountEnv(t *testing.T, mk storeMaker, more func(c *signin.Config)) *accountEnv {
	t.Helper()
	ae := &accountEnv{}
	ae.env = newEnvOn(t, mk, func(c *signin.Config, origin string) {
		ae.op, c.OAuth = signintest.StartProviders(t, origin)
		c.Redirects, _ = signin.NewRedirectPolicy("/home", []string{"https://docs.example.com"})
		c.Password = &signin.PasswordConfig{Argon2: testArgon2}
		c.Anonymous = &signin.AnonymousConfig{TTL: time.Hour}
		if more != nil {
			more(c)
		}
	})
	ae.host.results = func(r signin.Result) {
		ae.mu.Lock()
		defer ae.mu.Unlock()
		ae.started = append(ae.started, r)
	}
	return ae
}

// signIn runs a whole OAuth flow and returns where the site sent the
// browser.
func (ae *accountEnv) signIn(b *browser, provider, redirectTo string) string {
	ae.t.Helper()
	return ae.op.SignInOAuth(b, ae.origin, provider, redirectTo)
}
