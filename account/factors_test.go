package account

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/convex-auth/caddy-convex-auth/passkey"
	"github.com/convex-auth/caddy-convex-auth/passkey/passkeytest"
	"github.com/convex-auth/caddy-convex-auth/secondfactor"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// newFactorEnv is a site with passwords, passkeys and TOTP on
// http://localhost:<port> (an IP is no RP ID).
func newFactorEnv(t *testing.T, mk storeMaker) *env {
	t.Helper()
	keys, err := secondfactor.NewSecretKeys("", make([]byte, secondfactor.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	changes := &signintest.ChangeLog{}
	e := newEnvOn(t, mk, func(c *signin.Config, origin string) {
		changes.Store = c.Users.(signintest.Store)
		c.Users = changes
		c.Origin = strings.Replace(origin, "127.0.0.1", "localhost", 1)
		c.Password = &signin.PasswordConfig{Argon2: testArgon2}
		c.Passkey = &passkey.Config{}
		c.SecondFactor = &signin.SecondFactorConfig{Keys: keys}
	})
	e.origin = strings.Replace(e.origin, "127.0.0.1", "localhost", 1)
	e.changes = changes
	return e
}

func (e *env) factors(userID string) *session.UserFactors {
	e.t.Helper()
	f, err := e.svc.Factors().Factors(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

var hiddenPending = regexp.MustCompile(`name="pending" value="([^"]+)"`)
var secretShown = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)

// totpCode is the app's code for secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAccountTOTP: enrolment shows a QR code, the secret and the URI; a
// wrong first code keeps it off; the right one turns it on (sealed in the
// store), spends that step and shows 10 backup codes once; turning it off
// needs a code; all of it needs a recent sign-in and a same-site form.
func TestAccountTOTP(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e := newFactorEnv(t, mk)
		b := newBrowser(t)
		e.signUp(b, adaEmail, adaPass)
		me, _ := b.Whoami(e.origin)

		resp, page := b.Get(e.origin + "/auth/account")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="enrol-totp"`) || !strings.Contains(page, `id="add-passkey"`) {
			t.Fatalf("the account page offers no second factor: %d", resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("the account page that adds passkeys: %s", csp)
		}
		resp, page = b.Get(e.origin + "/auth/account/totp")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<svg") || !strings.Contains(page, "otpauth://totp/") {
			t.Fatalf("enrolment page: %d", resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "script-src") {
			t.Fatalf("the enrolment page allows a script: %s", csp)
		}
		secret, pending := secretShown.FindStringSubmatch(page)[1], hiddenPending.FindStringSubmatch(page)[1]
		if strings.Contains(pending, secret) {
			t.Fatal("the pending enrolment holds the secret in clear")
		}
		// Cross-site and wrong codes change nothing.
		good := totpCode(t, secret, e.clock.Now())
		if resp, _ := b.CrossSite(e.origin+"/auth/account/totp", url.Values{"pending": {pending}, "code": {good}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site enrolment: %d", resp.StatusCode)
		}
		if resp, _ := b.Post(e.origin+"/auth/account/totp", url.Values{"pending": {pending}, "code": {"000000"}}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a wrong first code: %d", resp.StatusCode)
		}
		if other := newBrowser(t); true {
			e.signIn(other, adaEmail, adaPass)
			resp, body := other.Post(e.origin+"/auth/account/totp", url.Values{"pending": {pending}, "code": {good}})
			backSays(t, other, signin.PathAccount, resp, body, "totp_expired")
		}
		if e.factors(me.UserID).TOTP != nil {
			t.Fatal("TOTP on before a right code")
		}
		resp, page = b.Post(e.origin+"/auth/account/totp", url.Values{"pending": {pending}, "code": {good}})
		codes := regexp.MustCompile(`<code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code>`).FindAllStringSubmatch(page, -1)
		if resp.StatusCode != http.StatusOK || len(codes) != secondfactor.BackupCodeCount {
			t.Fatalf("turning on: %d, %d codes", resp.StatusCode, len(codes))
		}
		if got := e.changes.Take(); got != "factor-added:totp" {
			t.Fatalf("announced %q; want factor-added:totp", got)
		}
		f := e.factors(me.UserID)
		if f.TOTP == nil || strings.Contains(f.TOTP.Secret, secret) || f.BackupCodes != 10 || f.LastTOTPStep != secondfactor.Step(e.clock.Now()) {
			t.Fatalf("stored: %+v", f)
		}
		// The code that turned it on cannot turn it off: its step is spent.
		resp, page = b.Post(e.origin+"/auth/account/totp/disable", url.Values{"code": {good}})
		backSays(t, b, signin.PathAccount, resp, page, "totp_code")

		// Past the recent sign-in, re-authenticating needs the second
		// factor too: the password alone is refused.
		e.clock.Advance(ReauthWindow)
		if _, page := b.Get(e.origin + "/auth/account"); !strings.Contains(page, `id="reauth-code"`) {
			t.Fatal("the re-authentication form asks for no code once the user has a factor")
		}
		resp, page = b.Post(e.origin+"/auth/account/reauth", url.Values{"password": {adaPass}})
		backSays(t, b, signin.PathAccount, resp, page, "reauth_code")
		if resp, _ := b.Get(e.origin + "/auth/account/totp"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a password without the code re-authenticated: %d", resp.StatusCode)
		}
		resp, _ = b.Post(e.origin+"/auth/account/reauth", url.Values{"password": {adaPass}, "code": {totpCode(t, secret, e.clock.Now())}})
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(location(t, resp), "notice=reauthenticated") {
			t.Fatalf("the password and a code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		e.clock.Advance(30 * time.Second)
		if resp, _ := b.CrossSite(e.origin+"/auth/account/totp/disable", url.Values{"code": {totpCode(t, secret, e.clock.Now())}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site disable: %d", resp.StatusCode)
		}
		if e.factors(me.UserID).TOTP == nil {
			t.Fatal("a cross-site post turned TOTP off")
		}
		// A backup code turns it off too, and is spent.
		resp, _ = b.Post(e.origin+"/auth/account/totp/disable", url.Values{"code": {strings.ToUpper(codes[0][1])}})
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(location(t, resp), "notice=totp_removed") {
			t.Fatalf("disable with a backup code: %d", resp.StatusCode)
		}
		if got := e.changes.Take(); got != "factor-removed:totp" {
			t.Fatalf("announced %q; want factor-removed:totp", got)
		}
		if f := e.factors(me.UserID); f.TOTP != nil || f.BackupCodes != 0 {
			t.Fatalf("after turning the only factor off: %+v", f)
		}

		// Older than a recent sign-in: nothing can change.
		e.clock.Advance(ReauthWindow)
		if resp, page := b.Get(e.origin + "/auth/account/totp"); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "sign in again") {
			t.Fatalf("enrolment after the window: %d", resp.StatusCode)
		}
		if _, page := b.Get(e.origin + "/auth/account"); strings.Contains(page, `id="enrol-totp"`) || !strings.Contains(page, `id="factors-reauth"`) {
			t.Fatal("the account page offers changes without a recent sign-in")
		}
	})
}

// TestAccountCodeTriesAreCounted: the account page's code fields (turning
// the app off, re-authenticating) share the session's code tries: past
// secondfactor.MaxCodeAttempts even a right code is refused and nothing
// changes.
func TestAccountCodeTriesAreCounted(t *testing.T) {
	e := newFactorEnv(t, nil)
	b := newBrowser(t)
	e.signUp(b, adaEmail, adaPass)
	me, _ := b.Whoami(e.origin)
	_, page := b.Get(e.origin + "/auth/account/totp")
	secret, pending := secretShown.FindStringSubmatch(page)[1], hiddenPending.FindStringSubmatch(page)[1]
	if resp, _ := b.Post(e.origin+"/auth/account/totp", url.Values{"pending": {pending}, "code": {totpCode(t, secret, e.clock.Now())}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("turning on: %d", resp.StatusCode)
	}
	e.clock.Advance(30 * time.Second)
	for i := 1; i < secondfactor.MaxCodeAttempts; i++ {
		resp, page := b.Post(e.origin+"/auth/account/totp/disable", url.Values{"code": {"000000"}})
		backSays(t, b, signin.PathAccount, resp, page, "totp_code")
	}
	e.clock.Advance(ReauthWindow)
	resp, page := b.Post(e.origin+"/auth/account/reauth", url.Values{"password": {adaPass}, "code": {"000000"}})
	backSays(t, b, signin.PathAccount, resp, page, "reauth_code")
	resp, page = b.Post(e.origin+"/auth/account/reauth", url.Values{"password": {adaPass}, "code": {totpCode(t, secret, e.clock.Now())}})
	backSays(t, b, signin.PathAccount, resp, page, signin.ReauthCodesSpent)
	if resp, _ := b.Get(e.origin + "/auth/account/totp"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a right code past the tries re-authenticated: %d", resp.StatusCode)
	}
	if e.factors(me.UserID).TOTP == nil {
		t.Fatal("the app was turned off")
	}
}

// TestAccountPasskeys adds a passkey through the options and the answer,
// lists it by name, and removes it; the options need a recent sign-in and
// the same site; an answer to another browser's ceremony is refused.
func TestAccountPasskeys(t *testing.T) {
	e := newFactorEnv(t, nil)
	b := newBrowser(t)
	e.signUp(b, adaEmail, adaPass)
	me, _ := b.Whoami(e.origin)
	auth := &passkeytest.Authenticator{Origin: e.origin, UV: true, BackupEligible: true}

	options := func(b *browser, name string) (*http.Response, []byte) {
		t.Helper()
		resp, body := b.Post(e.origin+"/auth/account/passkeys/options", url.Values{"name": {name}})
		return resp, []byte(body)
	}
	if resp, _ := b.CrossSite(e.origin+"/auth/account/passkeys/options", url.Values{"name": {"x"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site options: %d", resp.StatusCode)
	}
	resp, opts := options(b, "My laptop")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("options: %d %s", resp.StatusCode, opts)
	}
	answer, err := auth.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Another browser cannot finish this browser's ceremony.
	other := newBrowser(t)
	e.signIn(other, adaEmail, adaPass)
	resp, body := other.Post(e.origin+"/auth/account/passkeys", url.Values{"credential": {string(answer)}})
	backSays(t, other, signin.PathAccount, resp, body, "passkey_expired")
	resp, _ = b.Post(e.origin+"/auth/account/passkeys", url.Values{"credential": {string(answer)}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(location(t, resp), "notice=passkey_added") {
		t.Fatalf("adding: %d", resp.StatusCode)
	}
	// The ceremony is spent.
	resp, body = b.Post(e.origin+"/auth/account/passkeys", url.Values{"credential": {string(answer)}})
	backSays(t, b, signin.PathAccount, resp, body, "passkey_expired")
	f := e.factors(me.UserID)
	if len(f.Passkeys) != 1 || f.Passkeys[0].Name != "My laptop" || !f.Passkeys[0].BackupEligible {
		t.Fatalf("stored: %+v", f.Passkeys)
	}
	_, page := b.Get(e.origin + "/auth/account")
	if !strings.Contains(page, "My laptop") || !strings.Contains(page, "not used yet") || !strings.Contains(page, "synced") {
		t.Fatal("the account page does not list the passkey")
	}
	resp, body = b.Post(e.origin+"/auth/account/passkeys/remove", url.Values{"id": {"nope"}})
	backSays(t, b, signin.PathAccount, resp, body, "no_passkey")
	e.clock.Advance(ReauthWindow)
	if resp, _ := options(b, "late"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("options without a recent sign-in: %d", resp.StatusCode)
	}
	resp, body = b.Post(e.origin+"/auth/account/passkeys/remove", url.Values{"id": {f.Passkeys[0].ID}})
	backSays(t, b, signin.PathAccount, resp, body, "factor_reauth")
	// A password sign-in is now challenged; the passkey alone (it verifies
	// its user) signs in afresh.
	if resp, _ := e.signIn(b, adaEmail, adaPass); !strings.HasSuffix(location(t, resp), signin.PathChallenge) {
		t.Fatalf("a password sign-in of a user with a passkey: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = b.Post(e.origin+signin.PathPasskeyOptions, url.Values{})
	answer, err = auth.Get([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := b.Post(e.origin+"/auth/signin/passkey", url.Values{"credential": {string(answer)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("passkey sign-in: %d", resp.StatusCode)
	}
	resp, _ = b.Post(e.origin+"/auth/account/passkeys/remove", url.Values{"id": {f.Passkeys[0].ID}})
	if resp.StatusCode != http.StatusSeeOther || len(e.factors(me.UserID).Passkeys) != 0 {
		t.Fatalf("removing: %d", resp.StatusCode)
	}
	var refusal struct{ Error string }
	resp, body = b.Get(e.origin + "/auth/account/passkeys/options")
	if resp.StatusCode != http.StatusMethodNotAllowed || json.Unmarshal([]byte(body), &refusal) != nil || refusal.Error != "method" {
		t.Fatalf("GET options: %d %s", resp.StatusCode, body)
	}
}
