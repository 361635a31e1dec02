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

// Deleting the account ends its mailed links and codes: each is refused
// with the page of a used or unknown link, and none changes anything.
func TestAccountDeleteEndsPendingResetAndVerification(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, signin.VerifyOptional)
		ctx := context.Background()
		b, phone := newBrowser(t), newBrowser(t)
		sent := rcv.Count()
		e.signUp(b, adaEmail, adaPass)
		verifyLink, verifyCode := linkAndCode(t, waitMails(t, rcv, sent+1))
		me, ok := b.Whoami(e.origin)
		if !ok {
			t.Fatal("not signed in after the sign-up")
		}
		e.forgot(b, adaEmail)
		resetLink, resetCode := linkAndCode(t, waitMails(t, rcv, sent+2))

		resp, body := b.Post(e.origin+signin.PathAccount+"/delete", url.Values{"password": {adaPass}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Account deleted") {
			t.Fatalf("delete: status %d: %s", resp.StatusCode, body)
		}

		resetAction, resetToken := tokenOf(t, resetLink)
		verifyAction, verifyToken := tokenOf(t, verifyLink)
		// The link in the browser that asked (no code needed), the code in
		// another.
		for _, try := range []struct {
			name   string
			b      *browser
			action string
			form   url.Values
		}{
			{"reset link", b, resetAction, url.Values{"token": {resetToken}, "password": {newPass}, "confirm": {newPass}}},
			{"reset code", phone, resetAction, url.Values{"token": {resetToken}, "password": {newPass}, "confirm": {newPass}, "code": {resetCode}}},
			{"verify link", b, verifyAction, url.Values{"token": {verifyToken}}},
			{"verify code", phone, verifyAction, url.Values{"token": {verifyToken}, "code": {verifyCode}}},
		} {
			if resp, page := try.b.Get(try.action + "?" + url.Values{"token": try.form["token"]}.Encode()); resp.StatusCode != http.StatusBadRequest || !e.pageShows(page, "link") {
				t.Fatalf("opening the %s after the delete: %d; want the link page", try.name, resp.StatusCode)
			}
			if resp, page := try.b.Back(try.b.Post(try.action, try.form)); resp.StatusCode != http.StatusOK || !e.pageShows(page, "link") {
				t.Fatalf("the %s after the delete: %d; want the sign-in page saying the link is dead", try.name, resp.StatusCode)
			}
			if _, ok := try.b.Whoami(e.origin); ok {
				t.Fatalf("the %s signed a browser in", try.name)
			}
		}
		if _, err := e.store.GetUser(ctx, me.UserID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the user is back: %v", err)
		}
		if _, err := e.store.GetAccount(ctx, signin.ProviderPassword, adaEmail); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the password account is back: %v", err)
		}
		if _, err := e.store.UserByEmail(ctx, adaEmail); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the address is verified for someone: %v", err)
		}
		if e.signsIn(adaEmail, adaPass) || e.signsIn(adaEmail, newPass) {
			t.Fatal("a password signs in after the delete")
		}
	})
}

// An email sign-in link of an existing user ends with the user: it does
// not make a new one.
func TestAccountDeleteEndsPendingSignInLinks(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, signin.VerifyOff)
		ctx := context.Background()
		b := newBrowser(t)
		sent := rcv.Count()
		signintest.RequestLink(b, e.origin, adaEmail, "")
		first, _ := linkAndCode(t, waitMails(t, rcv, sent+1))
		if resp, _ := signintest.UseLink(b, first); !succeeded(resp) {
			t.Fatalf("email sign-in: %d", resp.StatusCode)
		}
		me, ok := b.Whoami(e.origin)
		if !ok {
			t.Fatal("not signed in by email")
		}
		phone := newBrowser(t)
		signintest.RequestLink(b, e.origin, adaEmail, "")
		pending, code := linkAndCode(t, waitMails(t, rcv, sent+2))

		// Signed in just now: no password needed.
		resp, body := b.Post(e.origin+signin.PathAccount+"/delete", url.Values{})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Account deleted") {
			t.Fatalf("delete: status %d: %s", resp.StatusCode, body)
		}
		if resp, page := b.Back(signintest.UseLink(b, pending)); resp.StatusCode != http.StatusOK || !e.pageShows(page, "link") {
			t.Fatalf("the sign-in link after the delete: %d; want the sign-in page saying the link is dead", resp.StatusCode)
		}
		if resp, page := phone.Back(signintest.UseLinkWithCode(phone, pending, code)); resp.StatusCode != http.StatusOK || !e.pageShows(page, "link") {
			t.Fatalf("the sign-in code after the delete: %d; want the sign-in page saying the link is dead", resp.StatusCode)
		}
		for _, br := range []*browser{b, phone} {
			if _, ok := br.Whoami(e.origin); ok {
				t.Fatal("a link of the deleted user signed a browser in")
			}
		}
		if _, err := e.store.GetAccount(ctx, signin.ProviderEmail, adaEmail); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the email account is back: %v", err)
		}
		if _, err := e.store.UserByEmail(ctx, adaEmail); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("a user holds the address: %v", err)
		}
		if _, err := e.store.GetUser(ctx, me.UserID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the user is back: %v", err)
		}
		// The address can sign up afresh.
		signintest.RequestLink(phone, e.origin, adaEmail, "")
		again, _ := linkAndCode(t, waitMails(t, rcv, sent+3))
		if resp, _ := signintest.UseLink(phone, again); !succeeded(resp) {
			t.Fatalf("a new email sign-in after the delete: %d", resp.StatusCode)
		}
		if w, ok := phone.Whoami(e.origin); !ok || w.UserID == me.UserID {
			t.Fatalf("after a new sign-in: %+v, %v; want a new user", w, ok)
		}
	})
}

func TestMailFlowsRefuseCrossSitePosts(t *testing.T) {
	e, rcv := newMailEnv(t, nil, signin.VerifyOptional)
	b := newBrowser(t)
	e.signUp(b, adaEmail, adaPass)
	sent := rcv.Count()
	for _, path := range []string{signin.PathForgotPassword, signin.PathResetPassword, signin.PathVerify, signin.PathVerifyResend, signin.PathChangePassword, "/auth/signin/email", "/auth/callback/email"} {
		form := url.Values{"email": {adaEmail}, "token": {"x"}, "current": {adaPass}, "password": {newPass}, "confirm": {newPass}}
		req, _ := http.NewRequest(http.MethodPost, e.origin+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp, page := b.Do(req); resp.StatusCode != http.StatusForbidden || !e.pageShows(page, "cross_site") {
			t.Errorf("cross-site POST %s: %d; want 403 with a clear page", path, resp.StatusCode)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if rcv.Count() != sent || !e.signsIn(adaEmail, adaPass) {
		t.Fatal("a cross-site post sent mail or changed the password")
	}
}
