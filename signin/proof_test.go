package signin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// newProofEnv is a mail site (verify_email optional) recording what it
// announces and why it ends sessions.
func newProofEnv(t *testing.T, mk storeMaker) (*env, *smtpReceiver, *signintest.ChangeLog, *reasonLog) {
	var log *signintest.ChangeLog
	var reasons *reasonLog
	e, rcv := newMailEnv(t, mk, VerifyOptional, func(c *Config) {
		log = &signintest.ChangeLog{Store: c.Users.(signintest.Store)}
		c.Users = log
		reasons = recordReasons(c)
	})
	return e, rcv, log, reasons
}

// TestResetRemovesWhatCameBeforeTheProof: someone signs up with Ada's
// address (verify_email optional) and a method gets bound to that user
// (here straight in the store); Ada resets the password. The first proof
// of the address removes that method, ends every session, forgets every
// browser, and says so: a mail, and user.updated's changes.
func TestResetRemovesWhatCameBeforeTheProof(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv, log, reasons := newProofEnv(t, mk)
		ctx := context.Background()
		attacker := newBrowser(t)
		e.signUp(attacker, adaEmail, "the attacker's password")
		squatter := e.who(attacker)
		if err := e.store.CreateAccount(ctx, session.Account{Provider: "zitadel", ProviderAccountID: "attacker", UserID: squatter.UserID}); err != nil {
			t.Fatal(err)
		}
		device := attacker.Cookie(e.origin, "convex_auth_device")
		if known, _ := e.store.KnownDevice(ctx, squatter.UserID, device); !known {
			t.Fatal("the sign-up's browser is not remembered")
		}
		reasons.Take()

		owner := newBrowser(t)
		sent := rcv.Count()
		e.forgot(owner, adaEmail)
		link, _ := linkAndCode(t, waitMailTo(t, rcv, sent, adaEmail, "/auth/password/reset?token="))
		action, token := tokenOf(t, link)
		sent = rcv.Count()
		if resp, _ := owner.Post(action, url.Values{"token": {token}, "password": {newPass}, "confirm": {newPass}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("reset: %d", resp.StatusCode)
		}
		if _, err := e.store.GetAccount(ctx, "zitadel", "attacker"); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("the method bound before the proof survived the reset: %v", err)
		}
		if a, _ := e.store.AccountsOf(ctx, squatter.UserID); len(a) != 1 || a[0].Provider != ProviderPassword {
			t.Fatalf("methods after the reset: %+v; want the password only", a)
		}
		if _, ok := attacker.Whoami(e.origin); ok {
			t.Fatal("the squatter's session outlived the reset")
		}
		if known, _ := e.store.KnownDevice(ctx, squatter.UserID, device); known {
			t.Fatal("the squatter's browser is still remembered")
		}
		if w := e.who(owner); w.UserID != squatter.UserID {
			t.Fatalf("the owner is %s; want the account %s", w.UserID, squatter.UserID)
		}
		if u, _ := e.store.GetUser(ctx, squatter.UserID); !u.Profile.EmailVerified {
			t.Fatal("the reset did not verify the address")
		}
		if got := log.Take(); got != "password-reset email-verified method-removed:zitadel" {
			t.Fatalf("announced %q", got)
		}
		if got := reasons.Take(); got != "reset" {
			t.Fatalf("sessions ended for %q; want reset", got)
		}
		waitMailTo(t, rcv, sent, adaEmail, "was removed from your account")
		waitMailTo(t, rcv, sent, adaEmail, "Your password was reset")

		// A second reset proves nothing new: nothing else goes.
		if err := e.store.CreateAccount(ctx, session.Account{Provider: "zitadel", ProviderAccountID: "later", UserID: squatter.UserID}); err != nil {
			t.Fatal(err)
		}
		sent = rcv.Count()
		e.forgot(owner, adaEmail)
		link, _ = linkAndCode(t, waitMailTo(t, rcv, sent, adaEmail, "/auth/password/reset?token="))
		action, token = tokenOf(t, link)
		owner.Post(action, url.Values{"token": {token}, "password": {adaPass}, "confirm": {adaPass}})
		if _, err := e.store.GetAccount(ctx, "zitadel", "later"); err != nil {
			t.Fatalf("a method linked after the proof went at a later reset: %v", err)
		}
		if got := log.Take(); got != "password-reset" {
			t.Fatalf("a later reset announced %q", got)
		}
	})
}

// TestVerificationRemovesWhatCameBeforeTheProof: the first verification
// of the address ends the methods and sessions from before it too.
func TestVerificationRemovesWhatCameBeforeTheProof(t *testing.T) {
	e, rcv, log, reasons := newProofEnv(t, nil)
	ctx := context.Background()
	b, other := newBrowser(t), newBrowser(t)
	sent := rcv.Count()
	e.signUp(b, adaEmail, adaPass)
	me := e.who(b)
	link, _ := linkAndCode(t, waitMailTo(t, rcv, sent, adaEmail, "/auth/verify?token="))
	e.signIn(other, adaEmail, adaPass)
	if err := e.store.CreateAccount(ctx, session.Account{Provider: "zitadel", ProviderAccountID: "before", UserID: me.UserID}); err != nil {
		t.Fatal(err)
	}
	reasons.Take()
	action, token := tokenOf(t, link)
	if resp, _ := b.Post(action, url.Values{"token": {token}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("verify: %d", resp.StatusCode)
	}
	if _, err := e.store.GetAccount(ctx, "zitadel", "before"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("the method bound before the proof survived the verification: %v", err)
	}
	if _, ok := other.Whoami(e.origin); ok {
		t.Fatal("a session from before the proof outlived it")
	}
	if w := e.who(b); !w.EmailVerified {
		t.Fatal("the verifying browser is not signed in, verified")
	}
	if got := log.Take(); got != "email-verified method-removed:zitadel" {
		t.Fatalf("announced %q", got)
	}
	if got := reasons.Take(); got != session.ReasonEmailVerified {
		t.Fatalf("sessions ended for %q", got)
	}
}

// who is the browser's user; the test fails when it is signed out.
func (e *env) who(b *browser) whoami { return b.Who(e.origin) }
