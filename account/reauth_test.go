package account

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/signin"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// newMailAccountEnv is accountEnv with mail, for the notices.
func newMailAccountEnv(t *testing.T, mk storeMaker) (*accountEnv, *smtpReceiver) {
	t.Helper()
	rcv := signintest.StartSMTP(t, nil, "", "")
	ae := newAccountEnv(t, mk, func(c *signin.Config) {
		c.Mail = &signin.MailConfig{Mailer: signintest.Mailer(rcv), QuietNewDevices: true}
	})
	return ae, rcv
}

// noticeTo waits for a mail to address after the first `after` whose
// text holds want.
func noticeTo(t *testing.T, rcv *smtpReceiver, after int, address, want string) {
	t.Helper()
	signintest.WaitMailTo(t, rcv, after, address, want)
}

// TestChangingSignInMethodsNeedsARecentSignIn: linking and unlinking
// need the session's last authentication within ReauthWindow, or the
// password typed on the spot, which re-authenticates the session (the
// same ID); deleting reads the same time. Each change is mailed.
func TestChangingSignInMethodsNeedsARecentSignIn(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae, rcv := newMailAccountEnv(t, mk)
		ctx := context.Background()
		b := newBrowser(t)
		me := ae.signUp(b, adaEmail, adaPass)

		ae.clock.Advance(ReauthWindow + time.Second)
		page := ae.page(b)
		if !strings.Contains(page, `id="reauth"`) || !strings.Contains(page, `id="reauth-password"`) {
			t.Fatal("an old session's page offers no way to confirm it is you")
		}
		resp, body := b.Post(ae.origin+"/auth/link/zitadel", url.Values{})
		backSays(t, b, signin.PathAccount, resp, body, "reauth_methods")
		resp, body = b.Fetch(ae.origin+"/auth/link/zitadel", url.Values{})
		pageSays(t, resp, body, http.StatusForbidden, "reauth_methods")
		resp, body = b.Post(ae.origin+"/auth/link/zitadel", url.Values{"password": {"wrong horse"}})
		backSays(t, b, signin.PathAccount, resp, body, "credentials")

		// The password on the spot: the link goes ahead, and the session,
		// the same one, is re-authenticated.
		sent := rcv.Count()
		resp, body = b.Post(ae.origin+"/auth/link/zitadel", url.Values{"password": {adaPass}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("link with the password: %d %s", resp.StatusCode, body)
		}
		resp, body = b.Get(ae.op.SignIn(b, location(t, resp)))
		expectRedirect(t, resp, body, "notice", "linked")
		noticeTo(t, rcv, sent, adaEmail, "was added to your account")
		if w := ae.who(b); w.SessionID != me.SessionID {
			t.Fatal("re-authenticating replaced the session")
		}
		sess, err := ae.store.Lookup(ctx, b.Cookie(ae.origin, testSessionCookie))
		if err != nil || !sess.AuthTime.Equal(ae.clock.Now()) || len(sess.AMR) != 1 || sess.AMR[0] != "pwd" {
			t.Fatalf("the session after the password: %+v, %v; want its auth time now, amr pwd", sess, err)
		}

		// Within the window, unlinking needs nothing more.
		sent = rcv.Count()
		resp, body = b.Post(ae.origin+signin.PathAccount+"/unlink", url.Values{"provider": {"zitadel"}, "account": {"id2"}})
		expectRedirect(t, resp, body, "notice", "unlinked")
		noticeTo(t, rcv, sent, adaEmail, "was removed from your account")

		// Past it again: unlinking is refused without the password, and
		// the reauth form re-authenticates for what follows.
		resp, _ = b.Post(ae.origin+"/auth/link/google", url.Values{"password": {adaPass}})
		b.Get(ae.op.SignIn(b, location(t, resp)))
		ae.clock.Advance(ReauthWindow + time.Second)
		resp, body = b.Post(ae.origin+signin.PathAccount+"/unlink", url.Values{"provider": {"google"}, "account": {"id2"}})
		backSays(t, b, signin.PathAccount, resp, body, "reauth_methods")
		if a, _ := ae.store.AccountsOf(ctx, me.UserID); len(a) != 2 {
			t.Fatalf("a refused unlink left %d methods; want 2", len(a))
		}
		resp, body = b.Post(ae.origin+signin.PathAccount+"/reauth", url.Values{"password": {adaPass}})
		expectRedirect(t, resp, body, "notice", "reauthenticated")
		resp, body = b.Post(ae.origin+signin.PathAccount+"/unlink", url.Values{"provider": {"google"}, "account": {"id2"}})
		expectRedirect(t, resp, body, "notice", "unlinked")
		// A guest has nothing to protect: it links without a password.
		g := newBrowser(t)
		g.Post(ae.origin+"/auth/signin/anonymous", url.Values{})
		ae.clock.Advance(ReauthWindow + time.Second)
		if resp, _ := g.Post(ae.origin+"/auth/link/zitadel", url.Values{}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("a guest's link: %d", resp.StatusCode)
		}
	})
}

// TestLinkingNeedsAVerifiedEmail: a user with an email it never verified
// links no method, not at the start and not at the callback; a guest and
// a verified user do.
func TestLinkingNeedsAVerifiedEmail(t *testing.T) {
	ae := newAccountEnv(t, nil, nil)
	ctx := context.Background()
	b := newBrowser(t)
	me := ae.signUpUnverified(b, adaEmail, adaPass)
	resp, body := b.Post(ae.origin+"/auth/link/zitadel", url.Values{})
	backSays(t, b, signin.PathAccount, resp, body, "verify_first")
	resp, body = b.Fetch(ae.origin+"/auth/link/zitadel", url.Values{})
	pageSays(t, resp, body, http.StatusForbidden, "verify_first")
	// Verified at the start, not any more at the callback (the address
	// changed meanwhile): the callback refuses too.
	u, _ := ae.store.GetUser(ctx, me.UserID)
	u.Profile.EmailVerified = true
	_ = ae.store.UpdateUser(ctx, u)
	resp, _ = b.Post(ae.origin+"/auth/link/zitadel", url.Values{})
	callback := ae.op.SignIn(b, location(t, resp))
	u.Profile.Email, u.Profile.EmailVerified = "other@example.com", false
	_ = ae.store.UpdateUser(ctx, u)
	resp, body = b.Get(callback)
	expectRedirect(t, resp, body, "error", "verify_first")
	if _, err := ae.store.GetAccount(ctx, "zitadel", "id2"); err == nil {
		t.Fatal("an unverified user linked a method")
	}
}

// TestPasswordChangeReauthenticatesAndForgetsOtherBrowsers: the current
// password re-authenticates the session; other browsers are forgotten
// with their sessions; the user is told.
func TestPasswordChangeReauthenticatesAndForgetsOtherBrowsers(t *testing.T) {
	ae, rcv := newMailAccountEnv(t, nil)
	ctx := context.Background()
	b, other := newBrowser(t), newBrowser(t)
	me := ae.signUp(b, adaEmail, adaPass)
	ae.signInPassword(other, adaEmail, adaPass)
	otherDevice := other.Cookie(ae.origin, "convex_auth_device")
	if otherDevice == "" {
		t.Fatal("a sign-in set no device cookie")
	}
	if known, _ := ae.store.KnownDevice(ctx, me.UserID, otherDevice); !known {
		t.Fatal("the other browser is not remembered")
	}
	ae.clock.Advance(ReauthWindow + time.Second)
	sent := rcv.Count()
	resp, _ := b.Post(ae.origin+signin.PathChangePassword, url.Values{"current": {adaPass}, "password": {newPass}, "confirm": {newPass}})
	expectRedirect(t, resp, "", "notice", "password_changed")
	noticeTo(t, rcv, sent, adaEmail, "Your password was changed")
	if known, _ := ae.store.KnownDevice(ctx, me.UserID, otherDevice); known {
		t.Fatal("the other browser is still remembered after a password change")
	}
	if known, _ := ae.store.KnownDevice(ctx, me.UserID, b.Cookie(ae.origin, "convex_auth_device")); !known {
		t.Fatal("the browser that changed the password was forgotten")
	}
	sess, err := ae.store.Lookup(ctx, b.Cookie(ae.origin, testSessionCookie))
	if err != nil || !sess.Recent(ae.clock.Now(), ReauthWindow) {
		t.Fatalf("the session after a password change: %+v, %v; want re-authenticated", sess, err)
	}
}
