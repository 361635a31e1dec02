package signin

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// A banned user's sign-in is refused with a page that says so, and starts
// no session; unbanned, it signs in again.
func TestBannedUserCannotSignIn(t *testing.T) {
	e := newPasswordEnv(t)
	b := newBrowser(t)
	b.Post(e.origin+"/auth/signin/password", passwordForm("signup", "eve@example.com", "correct horse", ""))
	me, ok := b.Whoami(e.origin)
	if !ok {
		t.Fatal("sign-up did not sign in")
	}
	if _, err := e.store.SetBanned(context.Background(), me.UserID, true); err != nil {
		t.Fatal(err)
	}
	e.results.take()
	b2 := newBrowser(t)
	resp, body := b2.Back(b2.Post(e.origin+"/auth/signin/password", passwordForm("signin", "eve@example.com", "correct horse", "")))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "banned from signing in") {
		t.Fatalf("banned sign-in, back on the sign-in page: %d %s", resp.StatusCode, body)
	}
	if _, ok := b2.Whoami(e.origin); ok {
		t.Fatal("a banned user got a session")
	}
	if got := e.results.take(); got != "password:false" {
		t.Fatalf("results %q; want a failed sign-in", got)
	}
	if _, err := e.store.SetBanned(context.Background(), me.UserID, false); err != nil {
		t.Fatal(err)
	}
	resp, _ = b2.Post(e.origin+"/auth/signin/password", passwordForm("signin", "eve@example.com", "correct horse", ""))
	if again, ok := b2.Whoami(e.origin); !succeeded(resp) || !ok || again.UserID != me.UserID {
		t.Fatalf("after unban: %d, signed in %v", resp.StatusCode, ok)
	}
}

// An OIDC sign-in of a banned user ends at the banned page, signed out.
func TestBannedUserCannotSignInWithOIDC(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	oe.signIn(b, "zitadel", "")
	me, ok := b.Whoami(oe.origin)
	if !ok {
		t.Fatal("not signed in after the flow")
	}
	if _, err := oe.store.SetBanned(context.Background(), me.UserID, true); err != nil {
		t.Fatal(err)
	}
	b2 := newBrowser(t)
	callback := oe.op.SignIn(b2, oe.start(b2, "zitadel", ""))
	resp, body := b2.Get(callback)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "banned from signing in") {
		t.Fatalf("banned OIDC sign-in: %d %s", resp.StatusCode, body)
	}
	if _, ok := b2.Whoami(oe.origin); ok {
		t.Fatal("a banned user got a session")
	}
}
