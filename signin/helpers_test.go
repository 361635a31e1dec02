package signin

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/smtptest"
	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// testArgon2 keeps the tests fast; production hashes use the defaults.
var testArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// The harness is signin/signintest's.
type (
	fakeClock    = testclock.Clock
	browser      = signintest.Browser
	whoami       = signintest.Whoami
	testStore    = signintest.Store
	storeMaker   = signintest.StoreMaker
	testOP       = signintest.OP
	smtpReceiver = smtptest.Server
)

var (
	newBrowser = signintest.NewBrowser
	location   = signintest.Location
	eachStore  = signintest.EachStore
	succeeded  = signintest.Succeeded
)

const (
	testSessionCookie = signintest.SessionCookie
	opEmail           = signintest.OPEmail
)

// testHost is the Host a real server would be: a session cookie over the
// store.
type testHost struct {
	*signintest.Host
	// results, if set, hears every StartSession.
	results func(Result)
}

func (h *testHost) StartSession(w http.ResponseWriter, r *http.Request, res Result) error {
	if h.results != nil {
		h.results(res)
	}
	return h.StartFor(w, r, res.User, res.Provider, res.MaxTTL)
}

// env is a site with the sign-in service in front of a page that shows
// who is signed in.
type env struct {
	t      *testing.T
	origin string
	svc    *Service
	store  testStore
	clock  *fakeClock
	host   *testHost
	// results are the service's OnResult calls.
	results *resultLog
}

// resultLog records OnResult calls as "provider:true" or "provider:false".
type resultLog struct {
	mu  sync.Mutex
	got []string
}

func (l *resultLog) add(provider string, signedIn bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fmt.Sprintf("%s:%t", provider, signedIn))
}

// take returns the calls since the last take, joined by spaces.
func (l *resultLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := strings.Join(l.got, " ")
	l.got = nil
	return got
}

func newEnv(t *testing.T, configure func(c *Config, origin string)) *env {
	t.Helper()
	return newEnvOn(t, nil, configure)
}

// newEnvOn is newEnv on the store mk makes (nil: in-process).
func newEnvOn(t *testing.T, mk storeMaker, configure func(c *Config, origin string)) *env {
	t.Helper()
	site := signintest.NewSite(t, mk)
	e := &env{t: t, origin: site.Origin, store: site.Store, clock: site.Clock, host: &testHost{Host: site.Host}, results: new(resultLog)}
	cfg := Config{Origin: e.origin, Users: e.store, Sessions: e.store, Host: e.host, OnResult: e.results.add, Now: e.clock.Now}
	cfg.Redirects, _ = NewRedirectPolicy("/", nil)
	configure(&cfg, e.origin)
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	site.Serve(svc.Handle)
	return e
}

// startOP runs a real OpenID Provider with a client for redirectURIs.
func startOP(t *testing.T, redirectURIs ...string) *testOP {
	return signintest.StartOP(t, redirectURIs...)
}
