package account

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

func TestChangePassword(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		var reasons *signintest.ReasonLog
		e := newEnvOn(t, mk, func(c *signin.Config, origin string) {
			c.Password = &signin.PasswordConfig{Argon2: testArgon2} // no mail: change works without it
			reasons = &signintest.ReasonLog{Store: c.Sessions}
			c.Sessions = reasons
		})
		b, other := newBrowser(t), newBrowser(t)
		e.signUp(b, adaEmail, adaPass)
		e.signIn(other, adaEmail, adaPass)
		me, _ := b.Whoami(e.origin)
		change := func(b *browser, current, password, confirm string) (*http.Response, string) {
			return b.Post(e.origin+signin.PathChangePassword, url.Values{"current": {current}, "password": {password}, "confirm": {confirm}})
		}
		unchanged := func(what string) {
			t.Helper()
			if _, ok := other.Whoami(e.origin); !ok {
				t.Fatalf("%s ended the other session", what)
			}
			if !e.signsIn(adaEmail, adaPass) {
				t.Fatalf("%s changed the password", what)
			}
		}
		for _, c := range []struct {
			name                       string
			current, password, confirm string
			status                     int
			code                       string
		}{
			{"wrong current", "wrong horse", newPass, newPass, http.StatusUnauthorized, "current_password"},
			{"weak", adaPass, "short", "short", http.StatusBadRequest, ""},
			{"mismatch", adaPass, newPass, newPass + "!", http.StatusBadRequest, "password_mismatch"},
			{"common", adaPass, "iloveyou", "iloveyou", http.StatusBadRequest, "password_common"},
		} {
			resp, page := b.Back(change(b, c.current, c.password, c.confirm))
			if resp.StatusCode != http.StatusOK || c.code != "" && !e.pageShows(page, c.code) || !strings.Contains(page, "<h1>Change password</h1>") ||
				resp.Request.URL.Path != signin.PathChangePassword {
				t.Fatalf("%s: %d", c.name, resp.StatusCode)
			}
			unchanged(c.name)
			if resp, page := b.Fetch(e.origin+signin.PathChangePassword, url.Values{"current": {c.current}, "password": {c.password}, "confirm": {c.confirm}}); resp.StatusCode != c.status || c.code != "" && !e.pageShows(page, c.code) {
				t.Fatalf("%s by a script: %d; want %d", c.name, resp.StatusCode, c.status)
			}
			unchanged(c.name)
		}
		signedOut := newBrowser(t)
		if resp, page := signedOut.Back(change(signedOut, adaPass, newPass, newPass)); resp.StatusCode != http.StatusOK || !e.pageShows(page, "signed_out") {
			t.Fatalf("signed out: %d", resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodPost, e.origin+signin.PathChangePassword, strings.NewReader(url.Values{"current": {adaPass}, "password": {newPass}, "confirm": {newPass}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if resp, page := b.Do(req); resp.StatusCode != http.StatusForbidden || !e.pageShows(page, "cross_site") {
			t.Fatalf("cross-site: %d", resp.StatusCode)
		}
		unchanged("a cross-site post")

		resp, _ := change(b, adaPass, newPass, newPass)
		if !succeeded(resp) || location(t, resp) != e.origin+signin.PathAccount+"?notice=password_changed" {
			t.Fatalf("change: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if w, ok := b.Whoami(e.origin); !ok || w.SessionID != me.SessionID {
			t.Fatal("the changing browser was signed out")
		}
		if _, ok := other.Whoami(e.origin); ok {
			t.Fatal("the other browser is still signed in")
		}
		if got := reasons.Take(); got != session.ReasonPasswordChange {
			t.Fatalf("revoke reasons %q; want password-change", got)
		}
		if e.signsIn(adaEmail, adaPass) || !e.signsIn(adaEmail, newPass) {
			t.Fatal("after the change the old password works or the new one does not")
		}
	})
}

func TestChangePasswordNeedsAPasswordAccount(t *testing.T) {
	e, rcv := newMailEnv(t, nil, signin.VerifyOff)
	b := newBrowser(t)
	signintest.RequestLink(b, e.origin, adaEmail, "")
	signintest.UseLink(b, mailLink(t, rcv))
	resp, page := b.Back(b.Post(e.origin+signin.PathChangePassword, url.Values{"current": {"x"}, "password": {newPass}, "confirm": {newPass}}))
	if resp.StatusCode != http.StatusOK || !e.pageShows(page, "no_password") {
		t.Fatalf("an email-only user: %d", resp.StatusCode)
	}
}
