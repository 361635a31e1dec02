package account

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

const (
	firefoxLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"
	chromeMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// lastStart is the most recent session start.
func (ae *accountEnv) lastStart() signin.Result {
	ae.mu.Lock()
	defer ae.mu.Unlock()
	if len(ae.started) == 0 {
		ae.t.Fatal("no session was started")
	}
	return ae.started[len(ae.started)-1]
}

// signUp signs up with a password and marks the address verified, as its
// verification link would: linking a method needs it (signUpUnverified
// leaves it).
func (ae *accountEnv) signUp(b *browser, email, password string) whoami {
	ae.t.Helper()
	w := ae.signUpUnverified(b, email, password)
	ctx := context.Background()
	u, err := ae.store.GetUser(ctx, w.UserID)
	if err != nil {
		ae.t.Fatal(err)
	}
	u.Profile.EmailVerified = true
	if err := ae.store.UpdateUser(ctx, u); err != nil {
		ae.t.Fatal(err)
	}
	return w
}

func (ae *accountEnv) signUpUnverified(b *browser, email, password string) whoami {
	ae.t.Helper()
	resp, body := b.Post(ae.origin+"/auth/signin/password", signintest.PasswordForm("signup", email, password, ""))
	if !succeeded(resp) {
		ae.t.Fatalf("sign-up: status %d: %s", resp.StatusCode, body)
	}
	return ae.who(b)
}

func (ae *accountEnv) signInPassword(b *browser, email, password string) whoami {
	ae.t.Helper()
	resp, body := b.Post(ae.origin+"/auth/signin/password", signintest.PasswordForm("signin", email, password, ""))
	if !succeeded(resp) {
		ae.t.Fatalf("sign-in: status %d: %s", resp.StatusCode, body)
	}
	return ae.who(b)
}

func (ae *accountEnv) who(b *browser) whoami {
	ae.t.Helper()
	return b.Who(ae.origin)
}

// page reads the account page, which must answer 200.
func (ae *accountEnv) page(b *browser) string {
	ae.t.Helper()
	resp, body := b.Get(ae.origin + signin.PathAccount)
	if resp.StatusCode != http.StatusOK {
		ae.t.Fatalf("account page: status %d: %s", resp.StatusCode, body)
	}
	return body
}

// expectRedirect checks a 303 to the account page with ?kind=code.
func expectRedirect(t *testing.T, resp *http.Response, body, kind, code string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d; want 303 with %s=%s: %s", resp.StatusCode, kind, code, body)
	}
	loc, _ := url.Parse(location(t, resp))
	if loc.Path != signin.PathAccount || loc.Query().Get(kind) != code {
		t.Fatalf("sent to %s; want %s?%s=%s", loc, signin.PathAccount, kind, code)
	}
}

// backSays checks the answer to a failed form post from a page: a 303
// back to the page at path (the account page, or its delete page) with
// ?error=code, which then shows the message.
func backSays(t *testing.T, b *browser, path string, resp *http.Response, body, code string) {
	t.Helper()
	if loc, err := resp.Location(); err != nil || loc.Path != path {
		t.Fatalf("status %d to %q; want 303 back to %s", resp.StatusCode, resp.Header.Get("Location"), path)
	}
	resp, body = b.Back(resp, body)
	pageSays(t, resp, body, http.StatusOK, code)
}

// pageSays checks a page answer: its status and the message of code.
func pageSays(t *testing.T, resp *http.Response, body string, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d; want %d (%s): %s", resp.StatusCode, status, code, body)
	}
	msg := errorMessages[code]
	if msg == "" || !strings.Contains(body, htmlEscaped(msg)) {
		t.Fatalf("the page does not say %q:\n%s", msg, body)
	}
}

func htmlEscaped(s string) string {
	return strings.NewReplacer("'", "&#39;", `"`, "&#34;").Replace(s)
}

func TestAccountPageNeedsASession(t *testing.T) {
	ae := newAccountEnv(t, nil, nil)
	b := newBrowser(t)
	resp, _ := b.Get(ae.origin + signin.PathAccount)
	if !succeeded(resp) || location(t, resp) != ae.origin+"/auth/signin?redirectTo=%2Fauth%2Faccount" {
		t.Fatalf("signed out: status %d to %q; want 303 to sign in and back", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/unlink", "/sessions", "/delete"} {
		resp, _ := b.Post(ae.origin+signin.PathAccount+path, url.Values{})
		if !succeeded(resp) || !strings.Contains(location(t, resp), "/auth/signin") {
			t.Fatalf("POST %s signed out: status %d; want 303 to sign in", path, resp.StatusCode)
		}
	}
}

func TestAccountPageListsProfileMethodsAndSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae := newAccountEnv(t, mk, nil)
		b1, b2 := agent(t, firefoxLinux), agent(t, chromeMac)
		me := ae.signUpUnverified(b1, "ada@example.com", "correct horse")
		other := ae.signInPassword(b2, "ada@example.com", "correct horse")
		page := ae.page(b1)
		for _, want := range []string{"ada@example.com", "not verified", "Password", "Firefox on Linux", "Chrome on macOS",
			`data-session="` + me.SessionID + `" data-current="true"`, `data-session="` + other.SessionID + `"`,
			"Sign out everywhere else", `action="/auth/password/change"`, `name="current"`, `name="confirm"`,
			`id="verify-first"`, "Delete account"} {
			if !strings.Contains(page, want) {
				t.Fatalf("the account page lacks %q:\n%s", want, page)
			}
		}
		if strings.Contains(page, ">Remove<") {
			t.Fatal("the only sign-in method can be removed")
		}
		if strings.Contains(page, `action="/auth/link/`) {
			t.Fatal("the page offers linking to a user whose email is not verified")
		}
		if h := ae.lastHeaders(b1); h.Get("Content-Security-Policy") == "" || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("account page headers %v", h)
		}
	})
}

func (ae *accountEnv) lastHeaders(b *browser) http.Header {
	resp, _ := b.Get(ae.origin + signin.PathAccount)
	return resp.Header
}

func TestAccountSignsOutSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae := newAccountEnv(t, mk, nil)
		b1, b2, b3 := agent(t, firefoxLinux), agent(t, chromeMac), newBrowser(t)
		me := ae.signUp(b1, "ada@example.com", "correct horse")
		two := ae.signInPassword(b2, "ada@example.com", "correct horse")
		ae.signInPassword(b3, "ada@example.com", "correct horse")
		stranger := ae.signUp(newBrowser(t), "bob@example.com", "battery staple")

		resp, body := b1.Post(ae.origin+signin.PathAccount+"/sessions", url.Values{"id": {two.SessionID}})
		expectRedirect(t, resp, body, "notice", "signed_out")
		if _, ok := b2.Whoami(ae.origin); ok {
			t.Fatal("the signed-out browser is still signed in")
		}
		ae.who(b1)
		ae.who(b3)
		if _, page := b1.Get(location(t, resp)); !strings.Contains(page, notices["signed_out"]) || strings.Contains(page, two.SessionID) {
			t.Fatal("the page after signing out does not confirm it, or still lists the session")
		}
		// Again, or another user's session: not found, nothing ends.
		for _, id := range []string{two.SessionID, stranger.SessionID, "junk"} {
			resp, body := b1.Post(ae.origin+signin.PathAccount+"/sessions", url.Values{"id": {id}})
			backSays(t, b1, signin.PathAccount, resp, body, "unknown_session")
		}
		resp, body = b1.Fetch(ae.origin+signin.PathAccount+"/sessions", url.Values{"id": {"junk"}})
		pageSays(t, resp, body, http.StatusNotFound, "unknown_session")
		if l, _ := ae.store.List(context.Background(), stranger.UserID); len(l) != 1 {
			t.Fatal("another user's session was ended")
		}

		resp, body = b1.Post(ae.origin+signin.PathAccount+"/sessions", url.Values{"others": {"1"}})
		expectRedirect(t, resp, body, "notice", "signed_out_others")
		if _, ok := b3.Whoami(ae.origin); ok {
			t.Fatal("sign out everywhere else left a session")
		}
		if w := ae.who(b1); w.SessionID != me.SessionID {
			t.Fatal("sign out everywhere else ended this session")
		}
	})
}

func TestAccountRefusesCrossSiteAndChangesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae := newAccountEnv(t, mk, nil)
		b1, b2 := newBrowser(t), newBrowser(t)
		me := ae.signUp(b1, "ada@example.com", "correct horse")
		two := ae.signInPassword(b2, "ada@example.com", "correct horse")
		for path, form := range map[string]url.Values{
			signin.PathAccount + "/sessions": {"id": {two.SessionID}},
			signin.PathAccount + "/unlink":   {"provider": {"password"}, "account": {"ada@example.com"}},
			signin.PathAccount + "/delete":   {"password": {"correct horse"}},
			"/auth/link/zitadel":             {},
		} {
			resp, body := b1.CrossSite(ae.origin+path, form)
			pageSays(t, resp, body, http.StatusForbidden, "cross_site")
			if resp.Header.Get("Set-Cookie") != "" {
				t.Fatalf("a cross-site post to %s set a cookie", path)
			}
		}
		ctx := context.Background()
		if l, _ := ae.store.List(ctx, me.UserID); len(l) != 2 {
			t.Fatalf("%d sessions after cross-site posts; want both", len(l))
		}
		if _, err := ae.store.GetUser(ctx, me.UserID); err != nil {
			t.Fatalf("the user is gone after a cross-site delete: %v", err)
		}
		if a, _ := ae.store.AccountsOf(ctx, me.UserID); len(a) != 1 {
			t.Fatal("a cross-site unlink changed the accounts")
		}
		// GET is no way in either: it only asks.
		if resp, body := b1.Get(ae.origin + signin.PathAccount + "/delete"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Delete your account?") {
			t.Fatalf("GET delete: status %d; want the confirmation page", resp.StatusCode)
		}
		if _, err := ae.store.GetUser(ctx, me.UserID); err != nil {
			t.Fatalf("the user is gone after a GET of the delete page: %v", err)
		}
		resp, body := b1.Get(ae.origin + signin.PathAccount + "/unlink")
		pageSays(t, resp, body, http.StatusMethodNotAllowed, "method")
	})
}

func TestAccountLinkAndUnlink(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae := newAccountEnv(t, mk, nil)
		ctx := context.Background()
		b := newBrowser(t)
		me := ae.signUp(b, "ada@example.com", "correct horse")

		// Linking is a same-origin POST that runs the provider's flow.
		if resp, _ := b.Get(ae.origin + "/auth/link/zitadel"); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET /auth/link: status %d; want 405", resp.StatusCode)
		}
		resp, body := b.Post(ae.origin+"/auth/link/zitadel", url.Values{})
		if !succeeded(resp) {
			t.Fatalf("link start: status %d: %s", resp.StatusCode, body)
		}
		resp, body = b.Get(ae.op.SignIn(b, location(t, resp)))
		expectRedirect(t, resp, body, "notice", "linked")
		if a, err := ae.store.GetAccount(ctx, "zitadel", "id2"); err != nil || a.UserID != me.UserID {
			t.Fatalf("linked account = %+v, %v; want bound to %s", a, err, me.UserID)
		}
		if w := ae.who(b); w.SessionID != me.SessionID {
			t.Fatal("linking replaced the session")
		}
		page := ae.page(b)
		if strings.Count(page, ">Remove<") != 2 || strings.Contains(page, `action="/auth/link/zitadel"`) {
			t.Fatalf("after linking, the page should offer to remove both methods and not to link zitadel again:\n%s", page)
		}
		// Signing in with the linked provider is the same user.
		nb := newBrowser(t)
		ae.signIn(nb, "zitadel", "")
		if w := ae.who(nb); w.UserID != me.UserID {
			t.Fatalf("sign-in with the linked provider is user %s; want %s", w.UserID, me.UserID)
		}

		// Another user cannot link the same provider account.
		bob := newBrowser(t)
		bobWho := ae.signUp(bob, "bob@example.com", "battery staple")
		resp, _ = bob.Post(ae.origin+"/auth/link/zitadel", url.Values{})
		resp, body = bob.Get(ae.op.SignIn(bob, location(t, resp)))
		expectRedirect(t, resp, body, "error", "account_in_use")
		if _, page := bob.Get(location(t, resp)); !strings.Contains(page, htmlEscaped(errorMessages["account_in_use"])) {
			t.Fatal("the account page does not explain the refusal")
		}
		if a, _ := ae.store.GetAccount(ctx, "zitadel", "id2"); a.UserID != me.UserID {
			t.Fatal("a refused link moved the account")
		}
		if l, _ := ae.store.AccountsOf(ctx, bobWho.UserID); len(l) != 1 {
			t.Fatalf("bob has %d accounts after a refused link; want 1", len(l))
		}

		// Unlink: fine while another method is left, never the last.
		resp, body = b.Post(ae.origin+signin.PathAccount+"/unlink", url.Values{"provider": {"zitadel"}, "account": {"id2"}})
		expectRedirect(t, resp, body, "notice", "unlinked")
		if _, err := ae.store.GetAccount(ctx, "zitadel", "id2"); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("unlinked account: %v", err)
		}
		resp, body = b.Post(ae.origin+signin.PathAccount+"/unlink", url.Values{"provider": {"password"}, "account": {"ada@example.com"}})
		backSays(t, b, signin.PathAccount, resp, body, "last_method")
		if l, _ := ae.store.AccountsOf(ctx, me.UserID); len(l) != 1 {
			t.Fatal("the last method was removed")
		}
		resp, body = b.Post(ae.origin+signin.PathAccount+"/unlink", url.Values{"provider": {"password"}, "account": {"bob@example.com"}})
		backSays(t, b, signin.PathAccount, resp, body, "not_linked")
		resp, body = b.Fetch(ae.origin+signin.PathAccount+"/unlink", url.Values{"provider": {"password"}, "account": {"ada@example.com"}})
		pageSays(t, resp, body, http.StatusConflict, "last_method")
		if _, err := ae.store.GetAccount(ctx, "password", "bob@example.com"); err != nil {
			t.Fatal("another user's account was unlinked")
		}
	})
}

// A link flow completes only in the session that started it.
func TestAccountLinkIsBoundToTheSession(t *testing.T) {
	ae := newAccountEnv(t, nil, nil)
	b := newBrowser(t)
	ae.signUp(b, "ada@example.com", "correct horse")
	resp, _ := b.Post(ae.origin+"/auth/link/zitadel", url.Values{})
	callback := ae.op.SignIn(b, location(t, resp))
	// Meanwhile this browser signed in as someone else.
	bob := ae.signUp(b, "bob@example.com", "battery staple")
	resp, body := b.Get(callback)
	expectRedirect(t, resp, body, "error", "link_session")
	if _, err := ae.store.GetAccount(context.Background(), "zitadel", "id2"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a link finished in another session bound the account: %v", err)
	}
	if w := ae.who(b); w.UserID != bob.UserID {
		t.Fatal("the refused link changed the session")
	}
}

func TestAccountDelete(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae := newAccountEnv(t, mk, nil)
		ctx := context.Background()
		b, other := newBrowser(t), newBrowser(t)
		me := ae.signUp(b, "ada@example.com", "correct horse")
		ae.signInPassword(other, "ada@example.com", "correct horse")
		resp, _ := b.Post(ae.origin+"/auth/link/zitadel", url.Values{})
		b.Get(ae.op.SignIn(b, location(t, resp)))

		ae.clock.Advance(ReauthWindow + time.Second)
		if page := ae.page(b); strings.Contains(page, `id="delete-password"`) || !strings.Contains(page, `href="/auth/account/delete"`) {
			t.Fatal("the account page should link to the delete page, and ask nothing itself")
		}
		_, confirm := b.Get(ae.origin + signin.PathAccount + "/delete")
		for _, want := range []string{"Delete your account?", "ada@example.com", "Password (ada@example.com), Zitadel", "its 2 sessions", `id="delete-password"`, `id="confirm-delete"`} {
			if !strings.Contains(confirm, want) {
				t.Fatalf("the delete page lacks %q:\n%s", want, confirm)
			}
		}
		resp, body := b.Post(ae.origin+signin.PathAccount+"/delete", url.Values{})
		backSays(t, b, signin.PathAccount+"/delete", resp, body, "reauth")
		resp, body = b.Post(ae.origin+signin.PathAccount+"/delete", url.Values{"password": {"wrong horse"}})
		backSays(t, b, signin.PathAccount+"/delete", resp, body, "credentials")
		resp, body = b.Fetch(ae.origin+signin.PathAccount+"/delete", url.Values{"password": {"wrong horse"}})
		pageSays(t, resp, body, http.StatusUnauthorized, "credentials")
		if _, err := ae.store.GetUser(ctx, me.UserID); err != nil {
			t.Fatalf("a refused delete removed the user: %v", err)
		}
		ae.who(other)

		resp, body = b.Post(ae.origin+signin.PathAccount+"/delete", url.Values{"password": {"correct horse"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Account deleted") {
			t.Fatalf("delete: status %d: %s", resp.StatusCode, body)
		}
		if _, err := ae.store.GetUser(ctx, me.UserID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the user outlived the delete: %v", err)
		}
		for _, pa := range [][2]string{{"password", "ada@example.com"}, {"zitadel", "id2"}} {
			if _, err := ae.store.GetAccount(ctx, pa[0], pa[1]); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("account %v outlived the delete: %v", pa, err)
			}
		}
		for _, br := range []*browser{b, other} {
			if _, ok := br.Whoami(ae.origin); ok {
				t.Fatal("a session outlived the delete")
			}
		}
		// The address is free again.
		if again := ae.signUp(newBrowser(t), "ada@example.com", "new horse!"); again.UserID == me.UserID {
			t.Fatal("a new sign-up got the deleted user's ID")
		}
	})
}

// Without a password, deleting needs a fresh sign-in; the sign-in page
// shows itself to a signed-in browser with reauth=1.
func TestAccountDeleteAfterFreshSignIn(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae := newAccountEnv(t, mk, nil)
		b := newBrowser(t)
		ae.signIn(b, "zitadel", "")
		me := ae.who(b)
		ae.clock.Advance(ReauthWindow + time.Second)
		_, page := b.Get(ae.origin + signin.PathAccount + "/delete")
		if strings.Contains(page, `id="delete-password"`) || strings.Contains(page, `id="confirm-delete"`) || !strings.Contains(page, "reauth=1") {
			t.Fatalf("an OAuth user's delete page should offer to sign in again, and no button:\n%s", page)
		}
		resp, body := b.Post(ae.origin+signin.PathAccount+"/delete", url.Values{"password": {"anything"}})
		backSays(t, b, signin.PathAccount+"/delete", resp, body, "credentials")
		resp, body = b.Post(ae.origin+signin.PathAccount+"/delete", url.Values{})
		backSays(t, b, signin.PathAccount+"/delete", resp, body, "reauth")
		if resp, _ := b.Get(ae.origin + "/auth/signin?reauth=1&redirectTo=%2Fauth%2Faccount%2Fdelete"); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in page with reauth=1: status %d; want the page", resp.StatusCode)
		}
		if to := ae.signIn(b, "zitadel", "/auth/account/delete"); to != ae.origin+"/auth/account/delete" {
			t.Fatalf("the fresh sign-in went to %s; want the delete page", to)
		}
		if _, page := b.Get(ae.origin + signin.PathAccount + "/delete"); !strings.Contains(page, `id="confirm-delete"`) {
			t.Fatal("after a fresh sign-in the delete page has no button")
		}
		resp, body = b.Post(ae.origin+signin.PathAccount+"/delete", url.Values{})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Account deleted") {
			t.Fatalf("delete after a fresh sign-in: status %d: %s", resp.StatusCode, body)
		}
		if _, err := ae.store.GetUser(context.Background(), me.UserID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the user outlived the delete: %v", err)
		}
	})
}

func TestGuestSignsUpInPlace(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae := newAccountEnv(t, mk, nil)
		ctx := context.Background()
		b := newBrowser(t)
		if _, page := b.Get(ae.origin + "/auth/signin"); !strings.Contains(page, `action="/auth/signin/anonymous"`) || !strings.Contains(page, "Continue as guest") {
			t.Fatal("the sign-in page has no guest button")
		}
		resp, body := b.Post(ae.origin+"/auth/signin/anonymous", url.Values{"redirectTo": {"/play"}})
		if !succeeded(resp) || location(t, resp) != ae.origin+"/play" {
			t.Fatalf("guest: status %d: %s", resp.StatusCode, body)
		}
		guest := ae.who(b)
		if guest.Provider != signin.ProviderAnonymous || guest.Email != "" {
			t.Fatalf("guest session %+v; want provider anonymous and no email", guest)
		}
		if u, err := ae.store.GetUser(ctx, guest.UserID); err != nil || !u.Anonymous {
			t.Fatalf("guest user = %+v, %v; want anonymous", u, err)
		}
		// A second click keeps the same guest.
		b.Post(ae.origin+"/auth/signin/anonymous", url.Values{})
		if w := ae.who(b); w.UserID != guest.UserID {
			t.Fatal("a second click made a second guest")
		}
		// A guest sees the sign-in page, to sign up or in.
		if resp, page := b.Get(ae.origin + "/auth/signin?mode=signup"); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Create an account") {
			t.Fatalf("a guest's sign-up page: status %d", resp.StatusCode)
		}
		if page := ae.page(b); !strings.Contains(page, "Guest") {
			t.Fatal("the account page does not say this is a guest")
		}

		me := ae.signUp(b, "ada@example.com", "correct horse")
		if me.UserID != guest.UserID || me.Email != "ada@example.com" {
			t.Fatalf("after sign-up %+v; want the guest's user ID %s with the email", me, guest.UserID)
		}
		if r := ae.lastStart(); !r.UpgradedGuest || r.ReplacedUserID != "" {
			t.Fatalf("result %+v; want an upgraded guest", r)
		}
		u, err := ae.store.GetUser(ctx, me.UserID)
		if err != nil || u.Anonymous {
			t.Fatalf("upgraded user = %+v, %v", u, err)
		}
		ae.clock.Advance(2 * time.Hour) // past the guest TTL
		if _, err := ae.store.GetUser(ctx, me.UserID); err != nil {
			t.Fatalf("the signed-up guest expired: %v", err)
		}
		ae.signInPassword(newBrowser(t), "ada@example.com", "correct horse")

		// A guest who signs in as an existing user leaves the guest behind.
		g2 := newBrowser(t)
		g2.Post(ae.origin+"/auth/signin/anonymous", url.Values{})
		guest2 := ae.who(g2)
		if w := ae.signInPassword(g2, "ada@example.com", "correct horse"); w.UserID != me.UserID {
			t.Fatalf("signed in as %s; want the account's user %s", w.UserID, me.UserID)
		}
		if r := ae.lastStart(); r.ReplacedUserID != guest2.UserID || r.UpgradedGuest {
			t.Fatalf("result %+v; want ReplacedUserID %s", r, guest2.UserID)
		}
		if u, err := ae.store.GetUser(ctx, guest2.UserID); err != nil || !u.Anonymous {
			t.Fatalf("the replaced guest = %+v, %v; want it left as a guest", u, err)
		}

		// A guest whose OAuth account is new is upgraded in place too.
		g3 := newBrowser(t)
		g3.Post(ae.origin+"/auth/signin/anonymous", url.Values{})
		guest3 := ae.who(g3)
		ae.signIn(g3, "zitadel", "")
		if w := ae.who(g3); w.UserID != guest3.UserID || w.Email != opEmail {
			t.Fatalf("after OAuth %+v; want guest %s with the provider's email", w, guest3.UserID)
		}
		if a, err := ae.store.GetAccount(ctx, "zitadel", "id2"); err != nil || a.UserID != guest3.UserID {
			t.Fatalf("the OAuth account = %+v, %v; want bound to the guest", a, err)
		}
		// An unused guest expires.
		ae.clock.Advance(2 * time.Hour)
		if _, err := ae.store.GetUser(ctx, guest2.UserID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("an unused guest: %v; want expired", err)
		}
	})
}

func TestDescribeUserAgent(t *testing.T) {
	for ua, want := range map[string]string{
		firefoxLinux: "Firefox/Linux",
		chromeMac:    "Chrome/macOS",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0":           "Edge/Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "Safari/iPhone",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36":                   "Chrome/Android",
		"curl/8.5.0": "curl/",
		"":           "Unknown browser/",
	} {
		b, s := describeUserAgent(ua)
		if got := b + "/" + s; got != want {
			t.Errorf("describeUserAgent(%q) = %s; want %s", ua, got, want)
		}
	}
}

// A user the app signed in has no record in the store: the page manages
// its sessions only, and deleting is refused without harm.
func TestAccountPageOfAnAppManagedUser(t *testing.T) {
	ae := newAccountEnv(t, nil, nil)
	tok, sess, err := ae.store.Create(context.Background(), session.NewSession{UserID: "app|7", Provider: "upstream",
		Profile: session.Profile{Email: "app@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	u, _ := url.Parse(ae.origin)
	b.C.Jar.SetCookies(u, []*http.Cookie{{Name: testSessionCookie, Value: tok, Path: "/"}})
	page := ae.page(b)
	if !strings.Contains(page, "app@example.com") || !strings.Contains(page, sess.ID) ||
		strings.Contains(page, `id="delete-account"`) || strings.Contains(page, "/auth/link/") {
		t.Fatalf("an app-managed user's page should show the profile and sessions only:\n%s", page)
	}
	resp, body := b.Post(ae.origin+signin.PathAccount+"/delete", url.Values{})
	backSays(t, b, signin.PathAccount+"/delete", resp, body, "app_managed")
	resp, body = b.Fetch(ae.origin+signin.PathAccount+"/delete", url.Values{})
	pageSays(t, resp, body, http.StatusNotFound, "app_managed")
	if _, err := ae.store.Lookup(context.Background(), tok); err != nil {
		t.Fatalf("the refused delete ended the session: %v", err)
	}
}
