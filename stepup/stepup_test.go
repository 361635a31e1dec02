package stepup

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/account"
	"github.com/convex-auth/caddy-convex-auth/secondfactor"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

var testArgon2 = signin.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

type host struct{ *signintest.Host }

func (h host) StartSession(w http.ResponseWriter, r *http.Request, res signin.Result) error {
	return h.Start(w, r, res.User, res.Provider)
}

// recordingStore is the site's store, recording each Reauthenticate.
type recordingStore struct {
	signintest.Store
	e *env
}

func (s recordingStore) Reauthenticate(ctx context.Context, userID, sessionID string, at time.Time, amr []string) error {
	s.e.mu.Lock()
	s.e.calls = append(s.e.calls, reauthCall{userID, sessionID, at, amr})
	s.e.mu.Unlock()
	return s.Store.Reauthenticate(ctx, userID, sessionID, at, amr)
}

// reauthCall is one Reauthenticate the pages made.
type reauthCall struct {
	userID, sessionID string
	at                time.Time
	amr               []string
}

type env struct {
	t      *testing.T
	site   *signintest.Site
	op     *signintest.OP
	svc    *signin.Service
	mu     sync.Mutex
	calls  []reauthCall
	origin string
}

func newEnv(t *testing.T, mk signintest.StoreMaker, opts ...func(*signin.Config)) *env {
	t.Helper()
	site := signintest.NewSite(t, mk)
	e := &env{t: t, site: site, origin: site.Origin}
	cfg := signin.Config{Origin: site.Origin, Users: site.Store, Sessions: recordingStore{site.Store, e}, Host: host{site.Host}, Now: site.Clock.Now}
	cfg.Redirects, _ = signin.NewRedirectPolicy("/home", nil)
	cfg.Password = &signin.PasswordConfig{Argon2: testArgon2}
	e.op, cfg.OAuth = signintest.StartProviders(t, site.Origin)
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := signin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	pages, err := New(Config{SignIn: svc})
	if err != nil {
		t.Fatal(err)
	}
	acct := account.New(svc)
	site.Serve(func(w http.ResponseWriter, r *http.Request) bool {
		return svc.Handle(w, r) || pages.Handle(w, r) || acct.Handle(w, r)
	})
	return e
}

func (e *env) reauths() []reauthCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]reauthCall(nil), e.calls...)
}

func (e *env) passwordUser(b *signintest.Browser) signintest.Whoami {
	resp, body := b.Post(e.origin+"/auth/signin/password", signintest.PasswordForm("signup", "ada@example.com", "correct horse", ""))
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign-up: %d %s", resp.StatusCode, body)
	}
	me, ok := b.Whoami(e.origin)
	if !ok {
		e.t.Fatal("not signed in")
	}
	return me
}

func TestSignedOutGoesToSignIn(t *testing.T) {
	e := newEnv(t, nil)
	resp, _ := signintest.NewBrowser(t).Get(e.origin + "/auth/reauth?redirectTo=%2Fbilling")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/signin?redirectTo=%2Fauth%2Freauth%3FredirectTo%3D%252Fbilling" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestPasswordReauthenticatesTheSameSession(t *testing.T) {
	signintest.EachStore(t, func(t *testing.T, mk signintest.StoreMaker) {
		e := newEnv(t, mk)
		b := signintest.NewBrowser(t)
		me := e.passwordUser(b)
		_, page := b.Get(e.origin + "/auth/reauth?redirectTo=%2Fbilling")
		if !strings.Contains(page, `id="reauth-password"`) || !strings.Contains(page, `value="/billing"`) {
			t.Fatalf("the page offers no password form: %s", page)
		}
		form := url.Values{"password": {"wrong horse"}, "redirectTo": {"/billing"}}
		if resp, page := b.Post(e.origin+"/auth/reauth/password", form); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "That password is not right") {
			t.Fatalf("a wrong password: %d", resp.StatusCode)
		}
		if resp, _ := b.CrossSite(e.origin+"/auth/reauth/password", url.Values{"password": {"correct horse"}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a cross-site post: %d", resp.StatusCode)
		}
		if len(e.reauths()) != 0 {
			t.Fatal("a refused attempt re-authenticated")
		}
		form.Set("password", "correct horse")
		resp, _ := b.Post(e.origin+"/auth/reauth/password", form)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/billing" {
			t.Fatalf("the right password: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		calls := e.reauths()
		if len(calls) != 1 || calls[0].sessionID != me.SessionID || calls[0].userID != me.UserID || strings.Join(calls[0].amr, " ") != "pwd" {
			t.Fatalf("re-authenticated %+v; want session %s by pwd", calls, me.SessionID)
		}
		if after, _ := b.Whoami(e.origin); after.SessionID != me.SessionID {
			t.Fatal("re-authentication changed the session")
		}
		// The store's session moved in place: what max_age and the
		// account page read.
		list, err := e.site.Store.List(context.Background(), me.UserID)
		if err != nil || len(list) != 1 || list[0].ID != me.SessionID || !list[0].AuthTime.Equal(calls[0].at.Truncate(time.Millisecond)) || strings.Join(list[0].AMR, " ") != "pwd" {
			t.Fatalf("the stored session after re-authentication: %+v (%v)", list, err)
		}
	})
}

func TestProviderReauthentication(t *testing.T) {
	e := newEnv(t, nil)
	b := signintest.NewBrowser(t)
	e.op.SignInOAuth(b, e.origin, "zitadel", "")
	me, _ := b.Whoami(e.origin)
	_, page := b.Get(e.origin + "/auth/reauth?redirectTo=%2Fbilling")
	if !strings.Contains(page, "Continue with Zitadel") || strings.Contains(page, `id="reauth-password"`) {
		t.Fatalf("the page for an OIDC user: %s", page)
	}
	resp, _ := b.Get(e.origin + "/auth/reauth/provider/zitadel?redirectTo=%2Fbilling")
	authURL := signintest.Location(t, resp)
	if u, _ := url.Parse(authURL); u.Query().Get("prompt") != "login" || u.Query().Get("max_age") != "0" {
		t.Fatalf("the provider is not asked for a new sign-in: %s", authURL)
	}
	resp, _ = b.Get(e.op.SignIn(b, authURL))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/billing" {
		t.Fatalf("the callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if calls := e.reauths(); len(calls) != 1 || calls[0].sessionID != me.SessionID {
		t.Fatalf("re-authenticated %+v; want session %s", calls, me.SessionID)
	}

	// An auth_time older than the re-authentication does not count (the
	// site's clock is ahead, as if the provider had not asked).
	e.site.Clock.Advance(time.Hour)
	resp, _ = b.Get(e.origin + "/auth/reauth/provider/zitadel?redirectTo=%2Fbilling")
	resp, page = b.Get(e.op.SignIn(b, signintest.Location(t, resp)))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "did not ask you to sign in again") || len(e.reauths()) != 1 {
		t.Fatalf("a stale auth_time: %d, %d re-authentications", resp.StatusCode, len(e.reauths()))
	}
}

func TestGitHubCannotReauthenticate(t *testing.T) {
	e := newEnv(t, nil)
	b := signintest.NewBrowser(t)
	e.op.SignInOAuth(b, e.origin, "github", "")
	_, page := b.Get(e.origin + "/auth/reauth")
	// It is offered to sign in again (a new session), and come back.
	if !strings.Contains(page, `id="reauth-none"`) || strings.Contains(page, "Continue with GitHub") || !strings.Contains(page, `/auth/signin?reauth=1`) {
		t.Fatalf("a GitHub user's page: %s", page)
	}
	if resp, _ := b.Get(e.origin + "/auth/reauth/provider/github"); resp.StatusCode == http.StatusFound {
		t.Fatal("a GitHub re-authentication started")
	}
	// Nor a provider the user has no account with.
	b2 := signintest.NewBrowser(t)
	e.passwordUser(b2)
	if resp, _ := b2.Get(e.origin + "/auth/reauth/provider/zitadel"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a provider the user has no account with: %d", resp.StatusCode)
	}
}

// TestOneRecentSignIn: the account page's "recent sign-in" is the one this
// page moves: its link leads here, and a re-authentication here lets the
// account page change sign-in methods without asking again; the account
// page's own password form moves the same session the same way.
func TestOneRecentSignIn(t *testing.T) {
	signintest.EachStore(t, func(t *testing.T, mk signintest.StoreMaker) {
		e := newEnv(t, mk)
		b := signintest.NewBrowser(t)
		me := e.passwordUser(b)
		e.site.Clock.Advance(10 * time.Minute)
		_, page := b.Get(e.origin + signin.PathAccount)
		if !strings.Contains(page, `id="reauth"`) || !strings.Contains(page, `href="/auth/reauth?redirectTo=%2Fauth%2Faccount"`) {
			t.Fatalf("a ten-minute-old sign-in's account page does not lead to re-authentication:\n%s", page)
		}
		resp, _ := b.Post(e.origin+"/auth/reauth/password", url.Values{"password": {"correct horse"}, "redirectTo": {signin.PathAccount}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != signin.PathAccount {
			t.Fatalf("step-up to the account page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if _, page := b.Get(e.origin + signin.PathAccount); strings.Contains(page, `id="reauth"`) {
			t.Fatal("after re-authenticating, the account page still asks for a recent sign-in")
		}

		e.site.Clock.Advance(10 * time.Minute)
		if resp, _ := b.Post(e.origin+signin.PathAccount+"/reauth", url.Values{"password": {"correct horse"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the account page's password form: %d", resp.StatusCode)
		}
		calls := e.reauths()
		if len(calls) != 2 || calls[0].sessionID != me.SessionID || calls[1].sessionID != me.SessionID || strings.Join(calls[1].amr, " ") != "pwd" {
			t.Fatalf("re-authentications %+v; want two of session %s by pwd", calls, me.SessionID)
		}
		if after, _ := b.Whoami(e.origin); after.SessionID != me.SessionID {
			t.Fatal("re-authentication changed the session")
		}
	})
}

// withSecondFactor is an env with second factors on and a browser signed
// in as a password user with the authenticator app and backup codes, as
// enrolment leaves them; it returns the backup codes.
func withSecondFactor(t *testing.T, mk signintest.StoreMaker) (*env, *signintest.Browser, signintest.Whoami, []string) {
	t.Helper()
	keys, err := secondfactor.NewSecretKeys("test", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, mk, func(c *signin.Config) { c.SecondFactor = &signin.SecondFactorConfig{Keys: keys} })
	b := signintest.NewBrowser(t)
	me := e.passwordUser(b)
	ctx := context.Background()
	if err := e.svc.Factors().SetTOTP(ctx, me.UserID, session.TOTP{Secret: keys.Seal(me.UserID, "JBSWY3DPEHPK3PXP"), CreatedAt: e.site.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	codes, hashes := secondfactor.NewBackupCodes(me.UserID)
	if err := e.svc.Factors().SetBackupCodes(ctx, me.UserID, hashes); err != nil {
		t.Fatal(err)
	}
	return e, b, me, codes
}

// TestSecondFactorIsAskedToo: once the user has a second factor, the
// password alone re-authenticates nothing: the page asks for a code with
// it, a provider's sign-in (which would skip the factor) is not offered
// nor started, and the password with a backup code re-authenticates the
// same session with amr pwd otp mfa.
func TestSecondFactorIsAskedToo(t *testing.T) {
	signintest.EachStore(t, func(t *testing.T, mk signintest.StoreMaker) {
		e, b, me, codes := withSecondFactor(t, mk)
		_, page := b.Get(e.origin + "/auth/reauth?redirectTo=%2Fbilling")
		if !strings.Contains(page, `id="reauth-password"`) || !strings.Contains(page, `name="code"`) {
			t.Fatalf("the password form asks for no code: %s", page)
		}
		form := url.Values{"password": {"correct horse"}, "redirectTo": {"/billing"}}
		if resp, page := b.Post(e.origin+"/auth/reauth/password", form); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "the code is not") {
			t.Fatalf("the password without a code: %d", resp.StatusCode)
		}
		form.Set("code", "0000-0000")
		if resp, _ := b.Post(e.origin+"/auth/reauth/password", form); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the password with a wrong code: %d", resp.StatusCode)
		}
		if len(e.reauths()) != 0 {
			t.Fatal("a refused attempt re-authenticated")
		}
		form.Set("code", codes[0])
		if resp, _ := b.Post(e.origin+"/auth/reauth/password", form); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/billing" {
			t.Fatalf("the password with a backup code: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if calls := e.reauths(); len(calls) != 1 || calls[0].sessionID != me.SessionID || strings.Join(calls[0].amr, " ") != "pwd otp mfa" {
			t.Fatalf("re-authenticated %+v; want session %s by pwd otp mfa", calls, me.SessionID)
		}
	})
}

// TestReauthCodeTriesAreCounted: a session gets secondfactor.MaxCodeAttempts
// code tries at re-authenticating, as a challenge does; then even a right
// code is refused (429) and nothing re-authenticates. A right code within
// the tries clears the count; a blank one is no try.
func TestReauthCodeTriesAreCounted(t *testing.T) {
	signintest.EachStore(t, func(t *testing.T, mk signintest.StoreMaker) {
		e, b, _, codes := withSecondFactor(t, mk)
		try := func(code string) int {
			form := url.Values{"password": {"correct horse"}, "redirectTo": {"/billing"}, "code": {code}}
			resp, _ := b.Post(e.origin+"/auth/reauth/password", form)
			return resp.StatusCode
		}
		if got := try(""); got != http.StatusUnauthorized {
			t.Fatalf("a blank code: %d", got)
		}
		for i := 1; i < secondfactor.MaxCodeAttempts; i++ {
			if got := try("0000-0000"); got != http.StatusUnauthorized {
				t.Fatalf("wrong code %d: %d", i, got)
			}
		}
		if got := try(codes[0]); got != http.StatusSeeOther {
			t.Fatalf("a right code on the last try: %d", got)
		}
		for i := 1; i <= secondfactor.MaxCodeAttempts; i++ {
			if got := try("0000-0000"); got != http.StatusUnauthorized {
				t.Fatalf("wrong code %d after a right one: %d", i, got)
			}
		}
		if got := try(codes[1]); got != http.StatusTooManyRequests {
			t.Fatalf("a right code once the tries are spent: %d; want 429", got)
		}
		if calls := e.reauths(); len(calls) != 1 {
			t.Fatalf("re-authenticated %d times; want once (the right code within the tries)", len(calls))
		}
	})
}
