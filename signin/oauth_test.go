package signin

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/oauth2"

	"github.com/convex-auth/caddy-convex-auth/internal/seal"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// oauthEnv is a site with three providers, all backed by one real OpenID
// Provider on loopback (signintest.StartProviders): "zitadel", "google"
// and "github".
type oauthEnv struct {
	*env
	op   *testOP
	logs *observer.ObservedLogs
}

func newOAuthEnv(t *testing.T, linkByEmail bool) *oauthEnv {
	t.Helper()
	return newOAuthEnvOn(t, nil, linkByEmail, nil)
}

// newOAuthEnvOn is newOAuthEnv on the store mk makes, with more
// configuration.
func newOAuthEnvOn(t *testing.T, mk storeMaker, linkByEmail bool, more func(c *Config)) *oauthEnv {
	t.Helper()
	oe := &oauthEnv{}
	core, logs := observer.New(zap.InfoLevel)
	oe.logs = logs
	oe.env = newEnvOn(t, mk, func(c *Config, origin string) {
		if more != nil {
			defer more(c)
		}
		oe.op, c.OAuth = signintest.StartProviders(t, origin)
		c.LinkByEmail = linkByEmail
		c.Logger = zap.New(core)
		c.Redirects, _ = NewRedirectPolicy("/home", []string{"https://docs.example.com"})
	})
	return oe
}

// start opens /auth/signin/<provider> and returns the provider URL it
// redirects to.
func (oe *oauthEnv) start(b *browser, provider, redirectTo string) string {
	oe.t.Helper()
	return signintest.StartOAuth(b, oe.origin, provider, redirectTo)
}

// signIn runs a whole flow and returns where the site sent the browser.
func (oe *oauthEnv) signIn(b *browser, provider, redirectTo string) string {
	oe.t.Helper()
	return oe.op.SignInOAuth(b, oe.origin, provider, redirectTo)
}

// expectFailure opens the callback URL and checks that it leads back to
// the sign-in page with the error code, signed out.
func (oe *oauthEnv) expectFailure(b *browser, callback, code string) {
	oe.t.Helper()
	resp, _ := b.Get(callback)
	if resp.StatusCode != http.StatusSeeOther {
		oe.t.Fatalf("callback: status %d; want 303 to the sign-in page", resp.StatusCode)
	}
	loc, _ := url.Parse(location(oe.t, resp))
	if loc.Path != PathSignIn || loc.Query().Get("error") != code {
		oe.t.Fatalf("callback sent the browser to %s; want %s?error=%s", loc, PathSignIn, code)
	}
	if w, ok := b.Whoami(oe.origin); ok {
		oe.t.Fatalf("signed in as %+v after a failed flow", w)
	}
	// The page names the problem in words.
	_, page := b.Get(loc.String())
	if !pageShows(page, code) {
		oe.t.Fatalf("sign-in page does not show %q", messages[code])
	}
}

// pageShows reports whether the HTML page holds the message of code.
func pageShows(page, code string) bool {
	return strings.Contains(page, template.HTMLEscapeString(messages[code]))
}

func (oe *oauthEnv) logged(substr string) bool {
	for _, e := range oe.logs.All() {
		if msg, ok := e.ContextMap()["error"].(string); ok && strings.Contains(msg, substr) {
			return true
		}
	}
	return false
}

func TestOIDCSignIn(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	if got := oe.signIn(b, "zitadel", "/loggedin?x=1"); got != oe.origin+"/loggedin?x=1" {
		t.Fatalf("after sign-in the browser went to %s; want /loggedin?x=1", got)
	}
	first, ok := b.Whoami(oe.origin)
	if !ok {
		t.Fatal("not signed in after the flow")
	}
	if first.Provider != "zitadel" || first.Email != opEmail || !first.EmailVerified || first.Name != "Test User2" {
		t.Fatalf("session %+v; want the OP's verified email and name", first)
	}
	// The account now leads to the user.
	acct, err := oe.store.GetAccount(context.Background(), "zitadel", "id2")
	if err != nil || acct.UserID != first.UserID {
		t.Fatalf("account (zitadel, id2) = %+v, %v; want user %s", acct, err, first.UserID)
	}
	// The session's claims come from the user record.
	user, err := oe.store.GetUser(context.Background(), first.UserID)
	if err != nil || user.Profile.Email != first.Email || user.Profile.Name != first.Name {
		t.Fatalf("user record %+v, %v does not match the session", user, err)
	}

	// Signing in again (same browser) finds the same user and replaces the
	// session with a new ID.
	oe.signIn(b, "zitadel", "")
	again, _ := b.Whoami(oe.origin)
	if again.UserID != first.UserID || again.SessionID == first.SessionID {
		t.Fatalf("second sign-in: user %s session %s; want user %s and a new session", again.UserID, again.SessionID, first.UserID)
	}
	if list, _ := oe.store.List(context.Background(), first.UserID); len(list) != 1 {
		t.Fatalf("the user has %d sessions; want the old one ended", len(list))
	}
	// Another browser: same user, its own session.
	b2 := newBrowser(t)
	if got := oe.signIn(b2, "zitadel", "//evil.example"); got != oe.origin+"/home" {
		t.Fatalf("an off-site redirectTo led to %s; want after_sign_in /home", got)
	}
	other, _ := b2.Whoami(oe.origin)
	if other.UserID != first.UserID || other.SessionID == again.SessionID {
		t.Fatalf("second browser: %+v", other)
	}
	// Signed in: the sign-in page sends the browser straight on.
	resp, _ := b.Get(oe.origin + "/auth/signin?redirectTo=" + url.QueryEscape("https://docs.example.com/guide"))
	if !succeeded(resp) || location(t, resp) != "https://docs.example.com/guide" {
		t.Fatalf("signed-in /auth/signin: %d %s; want 303 to the allowed origin", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestOIDCAuthorizationRequest(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	auth, _ := url.Parse(oe.start(b, "zitadel", ""))
	q := auth.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		t.Fatalf("no PKCE S256 challenge in %s", auth)
	}
	if len(q.Get("state")) < 43 || len(q.Get("nonce")) < 43 || q.Get("state") == q.Get("nonce") {
		t.Fatalf("state and nonce must be distinct and 256-bit: %s", auth)
	}
	if q.Get("redirect_uri") != oe.origin+"/auth/callback/zitadel" || !strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("redirect_uri or scope wrong: %s", auth)
	}
	// The browser keeps the flow, sealed: no state, verifier or nonce shows.
	flow := b.Cookie(oe.origin, flowCookieName)
	if flow == "" || strings.Contains(flow, q.Get("state")) || strings.Contains(flow, q.Get("nonce")) || strings.Contains(flow, "zitadel") {
		t.Fatalf("flow cookie %q is missing or not sealed", flow)
	}
}

// countingUsers counts the store writes that anonymous requests could make.
type countingUsers struct {
	session.UserStore
	writes atomic.Int32
}

func (c *countingUsers) PutOnce(ctx context.Context, secret string, value []byte, ttl time.Duration) error {
	c.writes.Add(1)
	return c.UserStore.PutOnce(ctx, secret, value, ttl)
}

func (c *countingUsers) PutOnceFor(ctx context.Context, userID, secret string, value []byte, ttl time.Duration) error {
	c.writes.Add(1)
	return c.UserStore.PutOnceFor(ctx, userID, secret, value, ttl)
}

func (c *countingUsers) CreateUser(ctx context.Context, n session.NewUser) (*session.User, error) {
	c.writes.Add(1)
	return c.UserStore.CreateUser(ctx, n)
}

func TestOAuthStartWritesNothingToTheStore(t *testing.T) {
	op := startOP(t)
	var users *countingUsers
	e := newEnv(t, func(c *Config, origin string) {
		p, err := provider.NewOIDC(provider.OIDCConfig{Common: provider.Common{Name: "zitadel", ClientID: op.ClientID, ClientSecret: op.Secret}, Issuer: op.Issuer})
		if err != nil {
			t.Fatal(err)
		}
		c.OAuth = []provider.OAuth{p}
		c.Limiter = c.Users.(session.Limiter)
		c.Limits.OAuthStart = session.Rate{Events: 100, Per: time.Minute}
		users = &countingUsers{UserStore: c.Users}
		c.Users = users
	})
	for range 50 {
		resp, _ := newBrowser(t).Get(e.origin + "/auth/signin/zitadel")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("start: %d", resp.StatusCode)
		}
	}
	if n := users.writes.Load(); n != 0 {
		t.Fatalf("50 OAuth starts wrote %d records to the store; want none", n)
	}
}

func TestOAuthFlowCookieIsSealed(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	callback := oe.op.SignIn(b, oe.start(b, "zitadel", "/loggedin"))
	site, _ := url.Parse(oe.origin)
	sealed := b.Cookie(oe.origin, flowCookieName)
	// A cookie of the right state but sealed with another key, or damaged,
	// is no flow.
	cb, _ := url.Parse(callback)
	forged := seal.Ephemeral().Seal(marshal(sealedFlow{Provider: "zitadel", State: cb.Query().Get("state"),
		Expires: oe.clock.Now().Add(time.Minute).UnixMilli()}), []byte(flowPurpose))
	for _, v := range []string{forged, sealed[:len(sealed)-2] + "AA", cb.Query().Get("state")} {
		other := newBrowser(t)
		other.C.Jar.SetCookies(site, []*http.Cookie{{Name: flowCookieName, Value: v, Path: "/"}})
		oe.expectFailure(other, callback, "state")
	}
	// The real one still works.
	resp, _ := b.Get(callback)
	if !succeeded(resp) || location(t, resp) != oe.origin+"/loggedin" {
		t.Fatalf("the sealed flow did not finish: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// forgeState swaps the state of a provider's callback URL for another.
func forgeState(callback string) string {
	forged, _ := url.Parse(callback)
	q := forged.Query()
	q.Set("state", randomToken())
	forged.RawQuery = q.Encode()
	return forged.String()
}

func TestOIDCStateMismatch(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	oe.expectFailure(b, forgeState(oe.op.SignIn(b, oe.start(b, "zitadel", ""))), "state")

	// The real callback opened in another browser (no flow cookie): a
	// login-CSRF attempt.
	b2 := newBrowser(t)
	callback := oe.op.SignIn(b2, oe.start(b2, "zitadel", ""))
	oe.expectFailure(newBrowser(t), callback, "state")
}

func TestOIDCNonceMismatch(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	auth, _ := url.Parse(oe.start(b, "zitadel", ""))
	q := auth.Query()
	q.Set("nonce", randomToken())
	auth.RawQuery = q.Encode()
	oe.expectFailure(b, oe.op.SignIn(b, auth.String()), "provider")
	if !oe.logged(provider.ErrNonceMismatch.Error()) {
		t.Fatalf("the failure was not the nonce check; log: %v", oe.logs.All())
	}
}

func TestOIDCPKCEFailure(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	auth, _ := url.Parse(oe.start(b, "zitadel", ""))
	q := auth.Query()
	// The provider gets the challenge of another verifier.
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
	auth.RawQuery = q.Encode()
	oe.expectFailure(b, oe.op.SignIn(b, auth.String()), "provider")
	if !oe.logged("exchanging the code") {
		t.Fatalf("the failure was not the token exchange; log: %v", oe.logs.All())
	}
}

func TestOIDCDeniedConsent(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	auth, _ := url.Parse(oe.start(b, "zitadel", "/loggedin"))
	state := auth.Query().Get("state")
	denied := oe.origin + "/auth/callback/zitadel?" + url.Values{"error": {"access_denied"}, "state": {state}}.Encode()
	resp, _ := b.Get(denied)
	loc, _ := url.Parse(location(t, resp))
	if loc.Query().Get("error") != "denied" || loc.Query().Get("redirectTo") != "/loggedin" {
		t.Fatalf("denied consent led to %s; want the sign-in page with error=denied, keeping redirectTo", loc)
	}
	_, page := b.Get(loc.String())
	if !pageShows(page, "denied") {
		t.Fatal("the page does not say that sign-in was cancelled")
	}
}

func TestOIDCReplayedState(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	auth, _ := url.Parse(oe.start(b, "zitadel", ""))
	flow := b.Cookie(oe.origin, flowCookieName)
	callback := oe.op.SignIn(b, auth.String())
	resp, _ := b.Get(callback)
	if !succeeded(resp) || strings.Contains(location(t, resp), "error=") {
		t.Fatalf("first use failed: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Replay, with the flow cookie put back, in a browser not signed in:
	// the code is used up at the provider.
	replay := newBrowser(t)
	site, _ := url.Parse(oe.origin)
	replay.C.Jar.SetCookies(site, []*http.Cookie{{Name: flowCookieName, Value: flow, Path: "/"}})
	oe.expectFailure(replay, callback, "provider")
}

func TestOIDCExpiredState(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	callback := oe.op.SignIn(b, oe.start(b, "zitadel", ""))
	oe.clock.Advance(DefaultFlowTTL)
	oe.expectFailure(b, callback, "state")
}

func TestOIDCStateOfAnotherProvider(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	callback, _ := url.Parse(oe.op.SignIn(b, oe.start(b, "zitadel", "")))
	callback.Path = "/auth/callback/google"
	oe.expectFailure(b, callback.String(), "state")
}

func TestGoogleSignIn(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	oe.signIn(b, "google", "/")
	w, ok := b.Whoami(oe.origin)
	if !ok || w.Provider != "google" || w.Email != opEmail || !w.EmailVerified {
		t.Fatalf("google sign-in: %+v, %v", w, ok)
	}
}

func TestGitHubSignIn(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	auth, _ := url.Parse(oe.start(b, "github", ""))
	if auth.Query().Get("code_challenge_method") != "S256" || auth.Query().Get("nonce") != "" {
		t.Fatalf("github authorization URL %s: want PKCE S256 and no nonce", auth)
	}
	resp, body := b.Get(oe.op.SignIn(b, auth.String()))
	if !succeeded(resp) || strings.Contains(location(t, resp), "error=") {
		t.Fatalf("github callback: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	w, ok := b.Whoami(oe.origin)
	// The primary verified email, not the other verified one.
	if !ok || w.Provider != "github" || w.Email != opEmail || !w.EmailVerified || w.Name != "Test User2" {
		t.Fatalf("github sign-in: %+v, %v", w, ok)
	}
	if _, err := oe.store.GetAccount(context.Background(), "github", "583231"); err != nil {
		t.Fatalf("account (github, 583231): %v", err)
	}
}

func TestLinkByEmail(t *testing.T) {
	for _, link := range []bool{false, true} {
		oe := newOAuthEnv(t, link)
		b := newBrowser(t)
		oe.signIn(b, "zitadel", "")
		first, _ := b.Whoami(oe.origin)
		oe.signIn(b, "github", "")
		second, _ := b.Whoami(oe.origin)
		if same := first.UserID == second.UserID; same != link {
			t.Fatalf("link_by_email=%v: same user = %v", link, same)
		}
	}
}

func TestUnknownProvider(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	for _, p := range []string{"/auth/signin/nope", "/auth/callback/nope", "/auth/signin/password", "/auth/callback/email"} {
		resp, body := b.Get(oe.origin + p)
		if resp.StatusCode != http.StatusNotFound || !pageShows(body, "unknown_provider") {
			t.Errorf("%s: %d; want 404 with a clear message", p, resp.StatusCode)
		}
	}
}

func TestProviderUnreachable(t *testing.T) {
	e := newEnv(t, func(c *Config, origin string) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		p, err := provider.NewOIDC(provider.OIDCConfig{Common: provider.Common{Name: "down", ClientID: "id", ClientSecret: "secret",
			HTTPClient: &http.Client{Timeout: time.Second}}, Issuer: dead.URL})
		if err != nil {
			t.Fatal(err)
		}
		c.OAuth = []provider.OAuth{p}
	})
	resp, body := newBrowser(t).Get(e.origin + "/auth/signin/down")
	if resp.StatusCode != http.StatusServiceUnavailable || !pageShows(body, "provider_unavailable") {
		t.Fatalf("unreachable provider: %d", resp.StatusCode)
	}
}

func TestResolveFillsProfileGaps(t *testing.T) {
	store := session.NewMemoryStore(session.Options{})
	defer store.Close()
	s := &Service{cfg: Config{Users: store}}
	ctx := context.Background()
	u, err := s.resolve(ctx, "p", provider.Identity{Subject: "1", Email: "A@Example.com"})
	if err != nil || u.Profile.Email != "a@example.com" || u.Profile.EmailVerified {
		t.Fatalf("new user %+v, %v", u, err)
	}
	u2, err := s.resolve(ctx, "p", provider.Identity{Subject: "1", Email: "a@example.com", EmailVerified: true, Name: "Ada", Picture: "https://x/p.png"})
	if err != nil || u2.ID != u.ID || !u2.Profile.EmailVerified || u2.Profile.Name != "Ada" {
		t.Fatalf("second resolve %+v, %v", u2, err)
	}
	u3, _ := s.resolve(ctx, "p", provider.Identity{Subject: "1", Email: "b@example.com", EmailVerified: true, Name: "Other"})
	if u3.Profile.Email != "a@example.com" || u3.Profile.Name != "Ada" {
		t.Fatalf("a later sign-in overwrote the profile: %+v", u3.Profile)
	}
}

func TestFlowCookieFollowsTheSessionCookieRule(t *testing.T) {
	oe := newOAuthEnv(t, false)
	rec := httptest.NewRecorder()
	oe.svc.Handle(rec, httptest.NewRequest(http.MethodGet, "http://app.example/auth/signin/github", nil))
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusFound || len(cookies) != 1 {
		t.Fatalf("start: %d, cookies %v", rec.Code, cookies)
	}
	c := cookies[0]
	if c.Name != secureFlowCookieName || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.MaxAge != int(DefaultFlowTTL/time.Second) {
		t.Fatalf("flow cookie %+v breaks the naming rule", c)
	}
}

// TestFlowCookiesBelongToTheirRealm: the flow cookie's name ends in the
// realm's tag, and a flow sealed in one realm does not open in another,
// even under the same keys.
func TestFlowCookiesBelongToTheirRealm(t *testing.T) {
	op := startOP(t)
	keys := seal.Ephemeral()
	site := func(realm string) *env {
		return newEnv(t, func(c *Config, origin string) {
			p, err := provider.NewOIDC(provider.OIDCConfig{Common: provider.Common{Name: "zitadel", ClientID: op.ClientID, ClientSecret: op.Secret}, Issuer: op.Issuer})
			if err != nil {
				t.Fatal(err)
			}
			c.OAuth, c.Realm, c.FlowKeys = []provider.OAuth{p}, realm, keys
		})
	}
	a, b := site("https://a.example convex"), site("https://b.example convex")
	nameA := flowCookieName + "_" + session.RealmTag("https://a.example convex")[:realmTagChars]
	nameB := flowCookieName + "_" + session.RealmTag("https://b.example convex")[:realmTagChars]
	br := newBrowser(t)
	resp, _ := br.Get(a.origin + "/auth/signin/zitadel")
	auth, _ := url.Parse(location(t, resp))
	state := auth.Query().Get("state")
	sealed := br.Cookie(a.origin, nameA)
	if sealed == "" {
		t.Fatalf("no flow cookie named %s", nameA)
	}
	callback := func(e *env, name string) string {
		other := newBrowser(t)
		u, _ := url.Parse(e.origin)
		other.C.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: sealed, Path: "/"}})
		resp, _ := other.Get(e.origin + "/auth/callback/zitadel?" + url.Values{"state": {state}, "code": {"not-a-code"}}.Encode())
		loc, _ := url.Parse(location(t, resp))
		return loc.Query().Get("error")
	}
	// In its realm the flow opens (and fails later, at the made-up code).
	if got := callback(a, nameA); got != "provider" {
		t.Fatalf("realm A's own flow: error %q; want it past the state check", got)
	}
	if got := callback(b, nameB); got != "state" {
		t.Fatalf("realm A's flow in realm B: error %q; want state", got)
	}
}
