package signin

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

const (
	adaEmail = "ada@example.com"
	adaPass  = "correct horse"
	newPass  = "battery staple"
)

// newMailEnv is a site with password (verify as given) and email sign-in,
// one mail setup for both, on the store mk makes.
func newMailEnv(t *testing.T, mk storeMaker, verify string, configure func(c *Config)) (*env, *smtpReceiver) {
	t.Helper()
	rcv := startSMTP(t, nil, "", "")
	e := newEnvOn(t, mk, func(c *Config, origin string) {
		c.Mail = &MailConfig{Mailer: signintest.Mailer(rcv), SiteName: "Example App", QuietNewDevices: true}
		c.Password = &PasswordConfig{Argon2: testArgon2, VerifyEmail: verify}
		c.Email = &EmailConfig{}
		if configure != nil {
			configure(c)
		}
	})
	return e, rcv
}

var (
	waitMails   = signintest.WaitMails
	waitMailTo  = signintest.WaitMailTo
	linkAndCode = signintest.LinkAndCode
	hiddenToken = signintest.HiddenToken
	tokenOf     = signintest.TokenOf
)

func (e *env) signUp(b *browser, email, password string) (*http.Response, string) {
	return b.Post(e.origin+"/auth/signin/password", passwordForm("signup", email, password, ""))
}

func (e *env) signIn(b *browser, email, password string) (*http.Response, string) {
	return b.Post(e.origin+"/auth/signin/password", passwordForm("signin", email, password, ""))
}

// signsIn reports whether a fresh browser signs in with the password.
func (e *env) signsIn(email, password string) bool {
	resp, _ := e.signIn(newBrowser(e.t), email, password)
	return succeeded(resp)
}

type reasonLog = signintest.ReasonLog

// recordReasons makes the service end sessions through a reasonLog.
func recordReasons(c *Config) *reasonLog {
	l := &signintest.ReasonLog{Store: c.Sessions}
	c.Sessions = l
	return l
}

func TestMailIsMultipartWithTheSiteName(t *testing.T) {
	e, rcv := newMailEnv(t, nil, VerifyOff, nil)
	requestLink(t, e, newBrowser(t), adaEmail, "")
	m := rcv.Last(t)
	text, html := mailParts(t, m.Data)
	if !strings.Contains(string(m.Data), "Subject: Your sign-in link for Example App") {
		t.Fatalf("the subject lacks the site name:\n%s", m.Data)
	}
	link, code := linkAndCode(t, text)
	if link == "" || !strings.Contains(html, `href="`+link+`"`) || !strings.Contains(html, code) || !strings.Contains(html, "Example App") {
		t.Fatalf("the HTML part lacks the link, code or site name:\n%s", html)
	}
}

func TestMailTemplatesAreOverridable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "signin_link.txt"), []byte(`{{define "subject"}}Hello from {{.SiteName}}{{end}}Go to {{.Link}} or type
{{.Code}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	e, rcv := newMailEnv(t, nil, VerifyOff, func(c *Config) { c.Mail.TemplatesDir = dir })
	requestLink(t, e, newBrowser(t), adaEmail, "")
	m := rcv.Last(t)
	text, html := mailParts(t, m.Data)
	if !strings.Contains(string(m.Data), "Subject: Hello from Example App") || !strings.HasPrefix(text, "Go to ") {
		t.Fatalf("the override was not used:\n%s", m.Data)
	}
	if !strings.Contains(html, "Sign in to Example App") {
		t.Fatalf("the built-in HTML part is gone:\n%s", html)
	}
	// A broken override stops the start, naming the file.
	if err := os.WriteFile(filepath.Join(dir, "reset.html"), []byte(`{{define "body"}}{{.Nope}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mail.ParseTemplates(dir); err == nil || !strings.Contains(err.Error(), "reset.html") {
		t.Fatalf("a broken template: %v; want an error naming reset.html", err)
	}
	if _, err := mail.ParseTemplates(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing templates directory was accepted")
	}
}

func TestEmailCodeMode(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyOff, func(c *Config) { c.Email.Mode = EmailModeCode })
		b := newBrowser(t)
		resp, page := requestLink(t, e, b, adaEmail, "/loggedin")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Enter your code") {
			t.Fatalf("asking for a code: %d", resp.StatusCode)
		}
		text := mailText(t, rcv.Last(t).Data)
		link, code := linkAndCode(t, text)
		if link != "" || strings.Contains(text, "token=") {
			t.Fatalf("a code-mode mail holds a link:\n%s", text)
		}
		token := hiddenToken(t, page)
		post := func(b *browser, code string) (*http.Response, string) {
			return b.Post(e.origin+"/auth/callback/email", url.Values{"token": {token}, "code": {code}})
		}
		// The asking browser needs the code too; each refusal comes back
		// to the code page, which keeps the token (in no URL).
		if resp, page := b.Back(post(b, "")); resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") || hiddenToken(t, page) != token {
			t.Fatalf("no code: %d", resp.StatusCode)
		}
		if resp, page := b.Back(post(b, "00000000")); resp.StatusCode != http.StatusOK || !pageShows(page, "code") || hiddenToken(t, page) != token {
			t.Fatalf("wrong code: %d", resp.StatusCode)
		}
		if _, ok := b.Whoami(e.origin); ok {
			t.Fatal("signed in without the code")
		}
		resp, _ = post(b, code[:4]+" "+code[4:])
		if !succeeded(resp) || location(t, resp) != e.origin+"/loggedin" {
			t.Fatalf("right code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if w, ok := b.Whoami(e.origin); !ok || !w.EmailVerified || w.Provider != "email" {
			t.Fatalf("after the code: %+v %v", w, ok)
		}
		// Used once.
		other := newBrowser(t)
		if resp, page := other.Back(post(other, code)); resp.StatusCode != http.StatusOK || !pageShows(page, "link") {
			t.Fatalf("reused code: %d", resp.StatusCode)
		}
	})
}

func TestEmailCodeModeSixthTryIsRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyOff, func(c *Config) { c.Email.Mode = EmailModeCode })
		b := newBrowser(t)
		_, page := requestLink(t, e, b, adaEmail, "")
		_, code := linkAndCode(t, mailText(t, rcv.Last(t).Data))
		token := hiddenToken(t, page)
		wrong := "99999999"
		if wrong == code {
			wrong = "11111111"
		}
		for i := 1; i <= MaxCodeTries; i++ {
			resp, page := b.Back(b.Post(e.origin+"/auth/callback/email", url.Values{"token": {token}, "code": {wrong}}))
			want := "code"
			if i == MaxCodeTries {
				want = "code_dead"
			}
			if resp.StatusCode != http.StatusOK || !pageShows(page, want) {
				t.Fatalf("wrong try %d: %d; want the page saying %s", i, resp.StatusCode, want)
			}
		}
		resp, _ := b.Post(e.origin+"/auth/callback/email", url.Values{"token": {token}, "code": {code}})
		if _, ok := b.Whoami(e.origin); succeeded(resp) || ok {
			t.Fatal("the right code worked on the 6th try")
		}
	})
}

func TestVerifyOptional(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, "", nil) // optional: the default with mail
		b := newBrowser(t)
		if resp, _ := e.signUp(b, adaEmail, adaPass); !succeeded(resp) {
			t.Fatalf("sign-up: %d", resp.StatusCode)
		}
		before, ok := b.Whoami(e.origin)
		if !ok || before.EmailVerified {
			t.Fatalf("after sign-up: %+v %v; want signed in, unverified", before, ok)
		}
		m := rcv.Last(t)
		if !strings.Contains(string(m.Data), "Subject: Verify your email for Example App") {
			t.Fatalf("verification mail:\n%s", m.Data)
		}
		link, code := linkAndCode(t, mailText(t, m.Data))
		action, token := tokenOf(t, link)
		if action != e.origin+PathVerify {
			t.Fatalf("verification link %s", link)
		}
		// Another browser needs the code; a wrong one changes nothing.
		other := newBrowser(t)
		if resp, page := other.Get(link); resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="code"`) {
			t.Fatalf("the link in another browser: %d, code field %v", resp.StatusCode, strings.Contains(page, `name="code"`))
		}
		if resp, page := other.Back(other.Post(action, url.Values{"token": {token}, "code": {"12"}})); resp.StatusCode != http.StatusOK || !pageShows(page, "code") || !strings.Contains(page, `name="code"`) {
			t.Fatalf("wrong code: %d", resp.StatusCode)
		}
		if u, _ := e.store.GetUser(context.Background(), before.UserID); u.Profile.EmailVerified {
			t.Fatal("a wrong code verified the email")
		}
		// Once another browser presented it, the asking browser needs the
		// code (and, as another browser would, the password) too.
		if resp, page := b.Get(link); resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="code"`) {
			t.Fatalf("the link in its browser after another opened it: %d; want a code field", resp.StatusCode)
		}
		if resp, page := b.Back(b.Post(action, url.Values{"token": {token}})); resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") {
			t.Fatalf("verifying without the code after another browser opened the link: %d", resp.StatusCode)
		}
		if resp, _ := b.Post(action, url.Values{"token": {token}, "code": {code}, "password": {adaPass}}); !succeeded(resp) {
			t.Fatalf("verifying: %d", resp.StatusCode)
		}
		after, ok := b.Whoami(e.origin)
		if !ok || !after.EmailVerified || after.UserID != before.UserID || after.SessionID == before.SessionID {
			t.Fatalf("after verifying: %+v; want the same user verified, in a new session", after)
		}
		if u, err := e.store.GetUser(context.Background(), before.UserID); err != nil || !u.Profile.EmailVerified {
			t.Fatalf("the stored user: %+v %v", u, err)
		}
		if resp, page := other.Back(other.Post(action, url.Values{"token": {token}, "code": {code}})); resp.StatusCode != http.StatusOK || !pageShows(page, "link") {
			t.Fatalf("reused link: %d", resp.StatusCode)
		}
		// A sign-in later carries it too.
		b3 := newBrowser(t)
		e.signIn(b3, adaEmail, adaPass)
		if w, _ := b3.Whoami(e.origin); !w.EmailVerified {
			t.Fatal("a later sign-in is unverified")
		}
	})
}

func TestVerifyByCodeInAnotherBrowser(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyOptional, nil)
		e.signUp(newBrowser(t), adaEmail, adaPass)
		link, code := linkAndCode(t, mailText(t, rcv.Last(t).Data))
		action, token := tokenOf(t, link)
		phone := newBrowser(t)
		// Another browser gives the code and the account's password.
		if _, page := phone.Get(link); !strings.Contains(page, `name="code"`) || !strings.Contains(page, `name="password"`) {
			t.Fatal("the verification page in another browser asks no code and password")
		}
		if resp, page := phone.Back(phone.Post(action, url.Values{"token": {token}, "code": {code}, "password": {"wrong horse"}})); resp.StatusCode != http.StatusOK || !pageShows(page, "verify_password") {
			t.Fatalf("the code with a wrong password: %d", resp.StatusCode)
		}
		if _, ok := phone.Whoami(e.origin); ok {
			t.Fatal("a wrong password signed in")
		}
		if resp, _ := phone.Post(action, url.Values{"token": {token}, "code": {code}, "password": {adaPass}}); !succeeded(resp) {
			t.Fatalf("verifying by code: %d", resp.StatusCode)
		}
		if w, ok := phone.Whoami(e.origin); !ok || !w.EmailVerified {
			t.Fatalf("after the code: %+v %v", w, ok)
		}
	})
}

func TestVerifyRequired(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyRequired, nil)
		ctx := context.Background()
		b := newBrowser(t)
		resp, page := e.signUp(b, adaEmail, adaPass)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Resend verification email") {
			t.Fatalf("sign-up: %d; want the check-your-email page", resp.StatusCode)
		}
		if _, ok := b.Whoami(e.origin); ok {
			t.Fatal("signed in before verifying")
		}
		if _, err := e.store.GetAccount(ctx, ProviderPassword, adaEmail); err == nil {
			t.Fatal("an account exists before verifying")
		}
		if e.signsIn(adaEmail, adaPass) {
			t.Fatal("the unverified sign-up signs in")
		}
		first, _ := linkAndCode(t, mailText(t, rcv.Last(t).Data))

		// Resend: a new link, the old one dead.
		resp, page = b.Post(e.origin+PathVerifyResend, url.Values{"token": {hiddenToken(t, page)}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, notices["verify_resent"]) {
			t.Fatalf("resend: %d", resp.StatusCode)
		}
		second, _ := linkAndCode(t, mailText(t, rcv.Last(t).Data))
		if second == first {
			t.Fatal("resend mailed the same link")
		}
		action, oldToken := tokenOf(t, first)
		if resp, page := b.Back(b.Post(action, url.Values{"token": {oldToken}})); !pageShows(page, "link") {
			t.Fatalf("the replaced link: %d", resp.StatusCode)
		}
		_, token := tokenOf(t, second)
		if resp, _ := b.Post(action, url.Values{"token": {token}}); !succeeded(resp) {
			t.Fatalf("verifying: %d", resp.StatusCode)
		}
		if w, ok := b.Whoami(e.origin); !ok || !w.EmailVerified || w.Email != adaEmail {
			t.Fatalf("after verifying: %+v %v", w, ok)
		}
		if !e.signsIn(adaEmail, adaPass) {
			t.Fatal("the verified account does not sign in")
		}
	})
}

// TestVerifyRequiredSignUpByAnotherCannotBeCompleted: someone signs up with
// another person's address; that person, following the mail in their own
// browser with the code, cannot create the account with a password they
// do not know (and so share it with whoever set it).
func TestVerifyRequiredSignUpByAnotherCannotBeCompleted(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyRequired, nil)
		e.signUp(newBrowser(t), adaEmail, "attacker's password")
		link, code := linkAndCode(t, mailText(t, rcv.Last(t).Data))
		action, token := tokenOf(t, link)
		owner := newBrowser(t)
		for _, pw := range []string{"", adaPass} {
			if resp, page := owner.Back(owner.Post(action, url.Values{"token": {token}, "code": {code}, "password": {pw}})); !pageShows(page, "verify_password") {
				t.Fatalf("completing with password %q: %d", pw, resp.StatusCode)
			}
		}
		if _, err := e.store.GetAccount(context.Background(), ProviderPassword, adaEmail); err == nil {
			t.Fatal("the account was created")
		}
	})
}

func TestVerifyRequiredForgetsUnverifiedSignUps(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyRequired, nil)
		e.signUp(newBrowser(t), adaEmail, adaPass)
		link, code := linkAndCode(t, mailText(t, rcv.Last(t).Data))
		e.clock.Advance(DefaultVerifyTTL)
		action, token := tokenOf(t, link)
		late := newBrowser(t)
		if resp, page := late.Back(late.Post(action, url.Values{"token": {token}, "code": {code}})); resp.StatusCode != http.StatusOK || !pageShows(page, "link") {
			t.Fatalf("an expired verification: %d", resp.StatusCode)
		}
		if _, err := e.store.GetAccount(context.Background(), ProviderPassword, adaEmail); err == nil {
			t.Fatal("an expired sign-up left an account")
		}
		// The address is free again.
		if resp, _ := e.signUp(newBrowser(t), adaEmail, newPass); resp.StatusCode != http.StatusOK {
			t.Fatalf("signing up again: %d", resp.StatusCode)
		}
	})
}

func TestVerifyRequiredRefusesAnUnverifiedUser(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyRequired, nil)
		ctx := context.Background()
		// Signed up while verification was optional.
		u, _ := e.store.CreateUser(ctx, session.NewUser{Profile: session.Profile{Email: adaEmail}})
		hash, _ := HashPassword(adaPass, testArgon2)
		_ = e.store.CreateAccount(ctx, session.Account{Provider: ProviderPassword, ProviderAccountID: adaEmail, UserID: u.ID, Secret: hash})
		b := newBrowser(t)
		resp, page := b.Back(e.signIn(b, adaEmail, adaPass))
		if resp.StatusCode != http.StatusOK || !pageShows(page, "verify_needed") || !strings.Contains(page, "Resend verification email") {
			t.Fatalf("unverified sign-in: %d", resp.StatusCode)
		}
		// The page it comes back to resends.
		sent := rcv.Count()
		if resp, page := b.Post(e.origin+PathVerifyResend, url.Values{"token": {hiddenToken(t, page)}}); resp.StatusCode != http.StatusOK || !strings.Contains(page, notices["verify_resent"]) || rcv.Count() != sent+1 {
			t.Fatalf("resend from the page a refused sign-in came back to: %d", resp.StatusCode)
		}
		if _, ok := b.Whoami(e.origin); ok {
			t.Fatal("an unverified user signed in")
		}
		link, _ := linkAndCode(t, mailText(t, rcv.Last(t).Data))
		action, token := tokenOf(t, link)
		if resp, _ := b.Post(action, url.Values{"token": {token}}); !succeeded(resp) {
			t.Fatalf("verifying: %d", resp.StatusCode)
		}
		if w, _ := b.Whoami(e.origin); w.UserID != u.ID || !w.EmailVerified {
			t.Fatalf("after verifying: %+v", w)
		}
	})
}

// forgot asks for a reset of email and returns the page.
func (e *env) forgot(b *browser, email string) (*http.Response, string) {
	return b.Post(e.origin+PathForgotPassword, url.Values{"email": {email}})
}

func TestPasswordReset(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		var reasons *reasonLog
		e, rcv := newMailEnv(t, mk, VerifyOff, func(c *Config) { reasons = recordReasons(c) })
		b, other := newBrowser(t), newBrowser(t)
		e.signUp(b, adaEmail, adaPass)
		e.signIn(other, adaEmail, adaPass)
		signedUp, _ := b.Whoami(e.origin)

		// The sign-in page offers it.
		if _, page := newBrowser(t).Get(e.origin + PathSignIn); !strings.Contains(page, `href="/auth/password/forgot"`) || !strings.Contains(page, "Forgot password?") {
			t.Fatal("the sign-in page has no Forgot password? link")
		}
		// An unknown address gets the same answer and no mail.
		sent := rcv.Count()
		unknown, unknownPage := e.forgot(newBrowser(t), "nobody@example.com")
		resp, page := e.forgot(b, adaEmail)
		if resp.StatusCode != http.StatusOK || unknown.StatusCode != http.StatusOK ||
			strings.ReplaceAll(unknownPage, "nobody@example.com", adaEmail) != page {
			t.Fatalf("known %d, unknown %d: the answers differ", resp.StatusCode, unknown.StatusCode)
		}
		text := waitMails(t, rcv, sent+1)
		time.Sleep(50 * time.Millisecond)
		if rcv.Count() != sent+1 {
			t.Fatalf("%d mails; want one, to the known address", rcv.Count()-sent)
		}
		link, _ := linkAndCode(t, text)
		action, token := tokenOf(t, link)
		if action != e.origin+PathResetPassword {
			t.Fatalf("reset link %s", link)
		}
		if resp, page := b.Get(link); resp.StatusCode != http.StatusOK || strings.Contains(page, `name="code"`) || !strings.Contains(page, `name="confirm"`) {
			t.Fatalf("the reset page: %d", resp.StatusCode)
		}
		// Bad input changes nothing.
		for _, c := range []struct{ password, confirm, code string }{
			{"short", "short", "password_short"},
			{newPass, newPass + "x", "password_mismatch"},
			{strings.Repeat("x", MaxPasswordLength+1), strings.Repeat("x", MaxPasswordLength+1), "password_long"},
		} {
			resp, page := b.Back(b.Post(action, url.Values{"token": {token}, "password": {c.password}, "confirm": {c.confirm}}))
			if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Choose a new password") || !pageShows(page, c.code) && c.code != "password_short" {
				t.Fatalf("%s: %d", c.code, resp.StatusCode)
			}
		}
		if !e.signsIn(adaEmail, adaPass) {
			t.Fatal("bad reset input changed the password")
		}
		if _, ok := other.Whoami(e.origin); !ok {
			t.Fatal("bad reset input ended a session")
		}
		// Cross-site: refused.
		req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(url.Values{"token": {token}, "password": {newPass}, "confirm": {newPass}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if resp, page := b.Do(req); resp.StatusCode != http.StatusForbidden || !pageShows(page, "cross_site") {
			t.Fatalf("cross-site reset: %d", resp.StatusCode)
		}
		reasons.Take()
		resp, _ = b.Post(action, url.Values{"token": {token}, "password": {newPass}, "confirm": {newPass}})
		if !succeeded(resp) {
			t.Fatalf("reset: %d", resp.StatusCode)
		}
		w, ok := b.Whoami(e.origin)
		if !ok || w.UserID != signedUp.UserID || w.SessionID == signedUp.SessionID || !w.EmailVerified {
			t.Fatalf("after the reset: %+v %v; want the user in a fresh session, verified", w, ok)
		}
		if _, ok := other.Whoami(e.origin); ok {
			t.Fatal("the other browser is still signed in")
		}
		if got := reasons.Take(); got != session.ReasonReset {
			t.Fatalf("revoke reasons %q; want reset", got)
		}
		if e.signsIn(adaEmail, adaPass) || !e.signsIn(adaEmail, newPass) {
			t.Fatal("after the reset the old password works or the new one does not")
		}
		late := newBrowser(t)
		if resp, page := late.Back(late.Post(action, url.Values{"token": {token}, "password": {"x" + newPass}, "confirm": {"x" + newPass}, "code": {"1"}})); resp.StatusCode != http.StatusOK || !pageShows(page, "link") {
			t.Fatalf("reused reset link: %d", resp.StatusCode)
		}
	})
}

func TestPasswordResetInAnotherBrowser(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyOff, nil)
		e.signUp(newBrowser(t), adaEmail, adaPass)
		sent := rcv.Count()
		e.forgot(newBrowser(t), adaEmail)
		link, code := linkAndCode(t, waitMails(t, rcv, sent+1))
		action, token := tokenOf(t, link)
		phone := newBrowser(t)
		if _, page := phone.Get(link); !strings.Contains(page, `name="code"`) {
			t.Fatal("the reset page in another browser asks no code")
		}
		form := url.Values{"token": {token}, "password": {newPass}, "confirm": {newPass}}
		if resp, page := phone.Back(phone.Post(action, form)); resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") {
			t.Fatalf("no code: %d", resp.StatusCode)
		}
		wrong := "00000000"
		if wrong == code {
			wrong = "11111111"
		}
		form.Set("code", wrong)
		for i := 1; i < MaxCodeTries; i++ {
			if resp, page := phone.Back(phone.Post(action, form)); resp.StatusCode != http.StatusOK || !pageShows(page, "code") {
				t.Fatalf("wrong code %d: %d", i, resp.StatusCode)
			}
		}
		// The 5th wrong code kills the link: the right one then fails too.
		if resp, page := phone.Back(phone.Post(action, form)); resp.StatusCode != http.StatusOK || !pageShows(page, "code_dead") {
			t.Fatalf("5th wrong code: %d", resp.StatusCode)
		}
		form.Set("code", code)
		if resp, page := phone.Back(phone.Post(action, form)); !pageShows(page, "link") {
			t.Fatalf("the right code after the link died: %d", resp.StatusCode)
		}
		if !e.signsIn(adaEmail, adaPass) {
			t.Fatal("a failed reset changed the password")
		}
		// A new request, the right code: done.
		sent = rcv.Count()
		e.forgot(newBrowser(t), adaEmail)
		link, code = linkAndCode(t, waitMails(t, rcv, sent+1))
		action, token = tokenOf(t, link)
		resp, _ := phone.Post(action, url.Values{"token": {token}, "password": {newPass}, "confirm": {newPass}, "code": {code}})
		if !succeeded(resp) || !e.signsIn(adaEmail, newPass) {
			t.Fatalf("reset by code: %d", resp.StatusCode)
		}
	})
}

func TestPasswordResetExpires(t *testing.T) {
	e, rcv := newMailEnv(t, nil, VerifyOff, nil)
	b := newBrowser(t)
	e.signUp(b, adaEmail, adaPass)
	sent := rcv.Count()
	e.forgot(b, adaEmail)
	link, _ := linkAndCode(t, waitMails(t, rcv, sent+1))
	e.clock.Advance(DefaultResetTTL)
	action, token := tokenOf(t, link)
	if resp, page := b.Back(b.Post(action, url.Values{"token": {token}, "password": {newPass}, "confirm": {newPass}})); resp.StatusCode != http.StatusOK || !pageShows(page, "link") {
		t.Fatalf("an expired reset: %d", resp.StatusCode)
	}
	if !e.signsIn(adaEmail, adaPass) {
		t.Fatal("an expired reset changed the password")
	}
}

func TestLinksDoNotCrossFlows(t *testing.T) {
	e, rcv := newMailEnv(t, nil, VerifyOptional, nil)
	b := newBrowser(t)
	requestLink(t, e, b, adaEmail, "")
	signInLink, _ := linkAndCode(t, mailText(t, rcv.Last(t).Data))
	_, token := tokenOf(t, signInLink)
	for _, path := range []string{PathResetPassword, PathVerify} {
		resp, page := b.Back(b.Post(e.origin+path, url.Values{"token": {token}, "password": {newPass}, "confirm": {newPass}}))
		if resp.StatusCode != http.StatusOK || !pageShows(page, "link") {
			t.Fatalf("a sign-in link at %s: %d", path, resp.StatusCode)
		}
	}
	// Still good for its own flow.
	if resp, _ := useLink(t, b, signInLink); !succeeded(resp) {
		t.Fatalf("the sign-in link after the refusals: %d", resp.StatusCode)
	}
}

func TestMailConfigRules(t *testing.T) {
	store := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = store.Close() })
	base := func() Config {
		c := Config{Origin: "https://app.example.com", Users: store, Sessions: store, Host: &testHost{Host: &signintest.Host{Store: store}}}
		c.Redirects, _ = NewRedirectPolicy("/", nil)
		return c
	}
	mailer := &mail.SMTPMailer{Host: "smtp.example.com", From: "login@example.com"}
	for name, c := range map[string]struct {
		edit func(c *Config)
		want string
	}{
		"required without mail": {func(c *Config) { c.Password = &PasswordConfig{VerifyEmail: VerifyRequired} }, "needs mail"},
		"unknown verify": {func(c *Config) {
			c.Mail = &MailConfig{Mailer: mailer}
			c.Password = &PasswordConfig{VerifyEmail: "sometimes"}
		}, "verify_email"},
		"unknown mode":       {func(c *Config) { c.Mail = &MailConfig{Mailer: mailer}; c.Email = &EmailConfig{Mode: "carrier-pigeon"} }, "mode"},
		"email without mail": {func(c *Config) { c.Email = &EmailConfig{} }, "needs mail"},
		"mail twice":         {func(c *Config) { c.Mail = &MailConfig{Mailer: mailer}; c.Email = &EmailConfig{Mailer: mailer} }, "twice"},
	} {
		cfg := base()
		c.edit(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", name, err, c.want)
		}
	}
	// provider password alone still works, without verification.
	cfg := base()
	cfg.Password = &PasswordConfig{}
	svc, err := New(cfg)
	if err != nil || svc.cfg.Password.VerifyEmail != VerifyOff {
		t.Fatalf("password alone: %v, verify %q; want off", err, svc.cfg.Password.VerifyEmail)
	}
	cfg.Mail = &MailConfig{Mailer: mailer}
	if svc, err = New(cfg); err != nil || svc.cfg.Password.VerifyEmail != VerifyOptional {
		t.Fatalf("password with mail: %v; want optional", err)
	}
}

func TestResetMailsCountAgainstTheSendLimit(t *testing.T) {
	e, rcv := newMailEnv(t, nil, VerifyOff, nil)
	e.signUp(newBrowser(t), adaEmail, adaPass)
	sent := rcv.Count()
	for i := 1; i <= DefaultMaxSends; i++ {
		if resp, _ := e.forgot(newBrowser(t), adaEmail); resp.StatusCode != http.StatusOK {
			t.Fatalf("reset request %d: %d", i, resp.StatusCode)
		}
	}
	waitMails(t, rcv, sent+DefaultMaxSends)
	b := newBrowser(t)
	resp, page := b.Back(e.forgot(b, adaEmail))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Too many emails were sent to this address") || !strings.Contains(page, `value="`+adaEmail+`"`) {
		t.Fatalf("reset request %d: %d; want the forgot page saying so, the address kept", DefaultMaxSends+1, resp.StatusCode)
	}
	time.Sleep(50 * time.Millisecond)
	if rcv.Count() != sent+DefaultMaxSends {
		t.Fatalf("%d mails; want %d", rcv.Count()-sent, DefaultMaxSends)
	}
}

// resetStore holds every account lookup until released, to show what the
// reset request's answer waits for.
type resetStore struct {
	resetBackend
	release chan struct{}
}

type resetBackend interface {
	session.UserStore
	session.Limiter
	session.AccountSecretSetter
}

func (s *resetStore) GetAccount(ctx context.Context, provider, id string) (*session.Account, error) {
	<-s.release
	return s.resetBackend.GetAccount(ctx, provider, id)
}

// The reset request answers before it looks the address up: a known and an
// unknown address get their answer while the store is held, and the known
// one's mail follows once it answers.
func TestPasswordResetAnswersBeforeTheLookup(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		held := &resetStore{release: make(chan struct{})}
		e, rcv := newMailEnv(t, mk, VerifyOff, func(c *Config) {
			held.resetBackend = c.Users.(resetBackend)
			c.Users = held
		})
		close(held.release)
		e.signUp(newBrowser(t), adaEmail, adaPass)
		held.release = make(chan struct{})
		var once sync.Once
		release := func() { once.Do(func() { close(held.release) }) }
		t.Cleanup(release) // a held request must not keep the server open

		sent := rcv.Count()
		for _, email := range []string{adaEmail, "nobody@example.com"} {
			done := make(chan int, 1)
			go func() {
				resp, _ := e.forgot(newBrowser(t), email)
				done <- resp.StatusCode
			}()
			select {
			case code := <-done:
				if code != http.StatusOK {
					t.Fatalf("%s: %d", email, code)
				}
			case <-time.After(time.Minute): // held: an answer that waits for the lookup never comes
				release()
				t.Fatalf("%s: the answer waited for the account lookup", email)
			}
		}
		if rcv.Count() != sent {
			t.Fatal("a mail went out before the lookup")
		}
		release()
		waitMails(t, rcv, sent+1)
	})
}

// TestResetLinkPresentedElsewhereNeedsItsCode: a reset link that another
// browser (a mail scanner) opened needs its code in the browser that asked
// for it too; the token alone changes no password there.
func TestResetLinkPresentedElsewhereNeedsItsCode(t *testing.T) {
	e, rcv := newMailEnv(t, nil, VerifyOff, nil)
	e.signUp(newBrowser(t), adaEmail, adaPass)
	asker := newBrowser(t)
	sent := rcv.Count()
	e.forgot(asker, adaEmail)
	link, code := linkAndCode(t, waitMails(t, rcv, sent+1))
	action, token := tokenOf(t, link)
	req, _ := http.NewRequest(http.MethodHead, link, nil)
	newBrowser(t).Do(req)
	form := url.Values{"token": {token}, "password": {newPass}, "confirm": {newPass}}
	if resp, page := asker.Back(asker.Post(action, form)); resp.StatusCode != http.StatusOK || !pageShows(page, "code_needed") {
		t.Fatalf("the asking browser without the code after a HEAD elsewhere: %d", resp.StatusCode)
	}
	if e.signsIn(adaEmail, newPass) {
		t.Fatal("the token alone replaced the password")
	}
	form.Set("code", code)
	if resp, _ := asker.Post(action, form); !succeeded(resp) || !e.signsIn(adaEmail, newPass) {
		t.Fatalf("with the code: %d", resp.StatusCode)
	}
}

// TestVerifyRequiredSignUpDoesNotTellAccountsApart: under verify_email
// required, a sign-up with an address that has an account and one with a
// new address get the same status and page (their random resend tokens
// aside); the new one gets its verification link, the owner a mail that
// someone tried, whose resend sends that mail again; no try counts as a
// failed sign-in, so sign-ups cannot lock the owner out.
func TestVerifyRequiredSignUpDoesNotTellAccountsApart(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		e, rcv := newMailEnv(t, mk, VerifyRequired, func(c *Config) { c.Password.MaxAttempts = 2 })
		owner := newBrowser(t)
		e.signUp(owner, adaEmail, adaPass)
		link, _ := linkAndCode(t, mailText(t, rcv.Last(t).Data))
		action, token := tokenOf(t, link)
		if resp, _ := owner.Post(action, url.Values{"token": {token}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("verifying the owner: %d", resp.StatusCode)
		}
		norm := func(page, email string) string {
			page = strings.ReplaceAll(page, email, "ADDRESS")
			return strings.ReplaceAll(page, hiddenToken(t, page), "TOKEN")
		}
		sent := rcv.Count()
		tryOwner := newBrowser(t)
		existing, existingPage := e.signUp(tryOwner, adaEmail, "a guess at it")
		fresh, freshPage := e.signUp(newBrowser(t), "grace@example.com", "a new password")
		if existing.StatusCode != http.StatusOK || fresh.StatusCode != existing.StatusCode || norm(existingPage, adaEmail) != norm(freshPage, "grace@example.com") {
			t.Fatalf("sign-up answers: %d for an existing account, %d for a new address; pages equal %v",
				existing.StatusCode, fresh.StatusCode, norm(existingPage, adaEmail) == norm(freshPage, "grace@example.com"))
		}
		waitMailTo(t, rcv, sent, "grace@example.com", "/auth/verify?token=")
		text := waitMailTo(t, rcv, sent, adaEmail, "tried to sign up")
		if strings.Contains(text, "token=") {
			t.Fatal("the owner's mail carries a link token")
		}
		// Its resend sends the owner's mail again, nothing else.
		sent = rcv.Count()
		resp, page := tryOwner.Post(e.origin+PathVerifyResend, url.Values{"token": {hiddenToken(t, existingPage)}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, notices["verify_resent"]) {
			t.Fatalf("resend: %d", resp.StatusCode)
		}
		waitMailTo(t, rcv, sent, adaEmail, "tried to sign up")
		// More tries than the attempt limit: the owner still signs in.
		for range 3 {
			e.signUp(newBrowser(t), adaEmail, "another guess")
		}
		if !e.signsIn(adaEmail, adaPass) {
			t.Fatal("sign-ups with the owner's address locked the owner out")
		}
	})
}

// TestNewBrowserSignInIsMailed: a sign-in from a browser the account has
// not seen, while it has seen another, mails the owner naming the
// browser; the first browser ever, and a browser seen before, do not.
func TestNewBrowserSignInIsMailed(t *testing.T) {
	e, rcv := newMailEnv(t, nil, VerifyOff, func(c *Config) { c.Mail.QuietNewDevices = false })
	first := newBrowser(t)
	e.signUp(first, adaEmail, adaPass)
	sent := rcv.Count()
	e.signIn(first, adaEmail, adaPass)
	phone := signintest.Agent(t, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile Safari/604.1")
	e.signIn(phone, adaEmail, adaPass)
	text := waitMailTo(t, rcv, sent, adaEmail, "from a browser it had not seen before")
	if !strings.Contains(text, "iPhone") || !strings.Contains(text, "/auth/account") {
		t.Fatalf("the new-browser mail does not name the browser or the account page:\n%s", text)
	}
	e.signIn(phone, adaEmail, adaPass)
	time.Sleep(100 * time.Millisecond)
	if n := rcv.Count() - sent; n != 1 {
		t.Fatalf("%d mails; want one, for the new browser only", n)
	}
}
