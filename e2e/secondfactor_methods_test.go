package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// The second factor against the built binary, through real HTTP: every
// first factor is challenged (an OIDC provider, an email link, a guest
// signing in to an account), remember_device skips the challenge in the
// browser that asked only and a password reset ends it, and the pages
// that need no WebAuthn allow no script.

var (
	totpSecretRE  = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	totpPendingRE = regexp.MustCompile(`name="pending" value="([^"]+)"`)
	backupCodeRE  = regexp.MustCompile(`<code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code>`)
)

// enrolTOTP sets up the authenticator app from c's account page (c signed
// in moments ago) and returns its secret and the backup codes shown.
func (s *site) enrolTOTP(t *testing.T, c *http.Client) (string, []string) {
	t.Helper()
	resp, page := get(t, c, s.origin+"/auth/account/totp")
	noScript(t, resp, "the authenticator app's setup")
	m, p := totpSecretRE.FindStringSubmatch(page), totpPendingRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || p == nil {
		t.Fatalf("the setup page: %d %.300s", resp.StatusCode, page)
	}
	resp, page = formPost(t, c, s.origin+"/auth/account/totp", url.Values{"pending": {p[1]}, "code": {totpNow(t, m[1])}})
	var codes []string
	for _, c := range backupCodeRE.FindAllStringSubmatch(page, -1) {
		codes = append(codes, c[1])
	}
	if resp.StatusCode != http.StatusOK || len(codes) != 10 {
		t.Fatalf("the first code: %d, %d backup codes", resp.StatusCode, len(codes))
	}
	return m[1], codes
}

func totpNow(t *testing.T, secret string) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// challenged checks that resp, a first factor's answer, sent c to the
// challenge with no new session (c is still who it was, was: "" or a
// guest), and that the challenge page runs no script.
func (s *site) challenged(t *testing.T, c *http.Client, resp *http.Response, what string, was ...string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || mustParse(t, location(t, resp)).Path != "/auth/challenge" {
		t.Fatalf("%s was not challenged: %d %s", what, resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, ck := range resp.Cookies() {
		if strings.Contains(ck.Name, "convex_session") && ck.MaxAge >= 0 && ck.Value != "" {
			t.Fatalf("%s set a session cookie before the second factor", what)
		}
	}
	if id, _ := s.whoIs(t, c); id != strings.Join(was, "") {
		t.Fatalf("%s is signed in as %q before the second factor", what, id)
	}
	page, body := get(t, c, s.origin+"/auth/challenge")
	if page.StatusCode != http.StatusOK || !strings.Contains(body, `id="code-form"`) {
		t.Fatalf("%s: the challenge page %d", what, page.StatusCode)
	}
	noScript(t, page, "the challenge")
}

// passChallenge answers c's challenge with code (and remember) and checks
// that c is then signed in as userID with amr naming the code and mfa.
func (s *site) passChallenge(t *testing.T, c *http.Client, code string, remember bool, userID string) {
	t.Helper()
	form := url.Values{"code": {code}}
	if remember {
		form.Set("remember", "1")
	}
	if resp, body := formPost(t, c, s.origin+"/auth/challenge", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the challenge's code: %d %.300s", resp.StatusCode, body)
	}
	if id, _ := s.whoIs(t, c); id != userID {
		t.Fatalf("after the challenge: signed in as %q; want %q", id, userID)
	}
	if amr := s.amr(t, c); !slices.Contains(amr, "otp") || !slices.Contains(amr, "mfa") {
		t.Fatalf("amr %v after a code; want otp and mfa", amr)
	}
}

// amr is the amr of a token minted for c's session.
func (s *site) amr(t *testing.T, c *http.Client) []string {
	t.Helper()
	return s.tokenClaims(t, c).AMR
}

// sessionClaims are the claims of a minted token that say which session
// it is and how and when its user authenticated.
type sessionClaims struct {
	SessionID string   `json:"sid"`
	AuthTime  int64    `json:"auth_time"`
	AMR       []string `json:"amr"`
}

// tokenClaims reads a token minted for c's session (/auth/token).
func (s *site) tokenClaims(t *testing.T, c *http.Client) sessionClaims {
	t.Helper()
	resp, body := get(t, c, s.origin+"/auth/token")
	var v struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil {
		t.Fatalf("/auth/token: %d %s", resp.StatusCode, body)
	}
	parts := strings.Split(v.Token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims sessionClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// noScript fails unless resp's policy allows no script.
func noScript(t *testing.T, resp *http.Response, what string) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("%s's policy allows a script, or is missing: %q", what, csp)
	}
}

// TestSecondFactorEveryMethod: with an authenticator app set up, an OIDC
// sign-in (an OpenID Provider on loopback), an email link and a guest
// signing in to the account are each sent to the challenge with no
// session, and pass it with a code (amr otp, mfa).
func TestSecondFactorEveryMethod(t *testing.T) {
	s := startSite(t, siteOptions{verifyEmail: "required", emailLinks: true, guests: true, idp: true})

	// An account of the IdP's: its first sign-in, then the app.
	first := newJarClient(t)
	s.signInWithIdP(t, first, "owner")
	idpUser, _ := s.whoIs(t, first)
	if idpUser == "" {
		t.Fatal("the IdP's first sign-in started no session")
	}
	_, idpCodes := s.enrolTOTP(t, first)
	oidc := newJarClient(t)
	s.challenged(t, oidc, s.signInWithIdP(t, oidc, "owner"), "an OIDC sign-in")
	s.passChallenge(t, oidc, idpCodes[0], false, idpUser)

	// An account of email links: its first sign-in, the app, then a link
	// in another browser.
	const linkEmail = "mfa-link@example.com"
	emailLink := func(c *http.Client) *http.Response {
		t.Helper()
		before := s.sink.Count()
		if resp, _ := formPost(t, c, s.origin+"/auth/signin/email", url.Values{"email": {linkEmail}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("asking for a link: %d", resp.StatusCode)
		}
		m := s.mailTo(t, before, linkEmail, "/auth/callback/email?token=")
		resp, _ := formPost(t, c, s.origin+"/auth/callback/email", url.Values{"token": {tokenOf(t, m.link)}})
		return resp
	}
	linkOwner := newJarClient(t)
	emailLink(linkOwner)
	linkUser, _ := s.whoIs(t, linkOwner)
	_, linkCodes := s.enrolTOTP(t, linkOwner)
	link := newJarClient(t)
	s.challenged(t, link, emailLink(link), "an email link")
	s.passChallenge(t, link, linkCodes[0], false, linkUser)

	// A password account, and a guest signing in to it.
	const email, password = "mfa-methods@example.com", "correct horse battery staple"
	owner := newJarClient(t)
	s.signUp(t, owner, email, password, true)
	userID, _ := s.whoIs(t, owner)
	_, codes := s.enrolTOTP(t, owner)

	guest := newJarClient(t)
	if resp, _ := formPost(t, guest, s.origin+"/auth/signin/anonymous", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("continue as guest: %d", resp.StatusCode)
	}
	guestID, _ := s.whoIs(t, guest)
	resp, _ := formPost(t, guest, s.origin+"/auth/signin/password", url.Values{"email": {email}, "password": {password}})
	s.challenged(t, guest, resp, "a guest signing in to the account", guestID)
	s.passChallenge(t, guest, codes[1], false, userID)
	if guestID == "" || guestID == userID {
		t.Fatalf("the guest %q was not a user of its own", guestID)
	}
}

// TestSecondFactorRememberDevice: under remember_device, a browser that
// passed the challenge asking to be remembered signs in again without it;
// another browser is challenged; a password reset ends it. The pages a
// signed-in and a signed-out browser see allow no script.
func TestSecondFactorRememberDevice(t *testing.T) {
	s := startSite(t, siteOptions{verifyEmail: "required", auth: "\t\tsecond_factor {\n\t\t\tremember_device 24h\n\t\t}\n"})
	const email, password = "remember@example.com", "correct horse battery staple"
	owner := newJarClient(t)
	s.signUp(t, owner, email, password, true)
	userID, _ := s.whoIs(t, owner)
	for _, path := range []string{"/auth/account", "/auth/account/delete", "/auth/password/change"} {
		resp, _ := get(t, owner, s.origin+path)
		noScript(t, resp, path)
	}
	_, codes := s.enrolTOTP(t, owner)
	signIn := func(c *http.Client, password string) *http.Response {
		resp, _ := formPost(t, c, s.origin+"/auth/signin/password", url.Values{"email": {email}, "password": {password}})
		return resp
	}

	remembered := newJarClient(t)
	s.challenged(t, remembered, signIn(remembered, password), "a password sign-in")
	if _, page := get(t, remembered, s.origin+"/auth/challenge"); !strings.Contains(page, "Remember this browser for 1 day") {
		t.Fatal("the challenge offers no remember this browser")
	}
	s.passChallenge(t, remembered, codes[0], true, userID)
	formPost(t, remembered, s.origin+"/auth/signout", nil)
	if id, _ := s.whoIs(t, remembered); id != "" {
		t.Fatal("still signed in after signing out")
	}
	if resp := signIn(remembered, password); resp.StatusCode != http.StatusSeeOther || mustParse(t, location(t, resp)).Path == "/auth/challenge" {
		t.Fatalf("the remembered browser was challenged: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if id, _ := s.whoIs(t, remembered); id != userID {
		t.Fatal("the remembered browser is not signed in")
	}

	// That browser only: another is challenged, and one that passed
	// without asking is challenged again.
	other := newJarClient(t)
	s.challenged(t, other, signIn(other, password), "another browser")
	s.passChallenge(t, other, codes[1], false, userID)
	formPost(t, other, s.origin+"/auth/signout", nil)
	s.challenged(t, other, signIn(other, password), "a browser that did not ask to be remembered")

	// A password reset, from another browser, ends it.
	for _, path := range []string{"/auth/signin", "/auth/signin?mode=signup", "/auth/password/forgot"} {
		resp, _ := get(t, newJarClient(t), s.origin+path)
		noScript(t, resp, path)
	}
	resetter := newJarClient(t)
	before := s.sink.Count()
	formPost(t, resetter, s.origin+"/auth/password/forgot", url.Values{"email": {email}})
	m := s.mailTo(t, before, email, "/auth/password/reset?token=")
	const newPassword = "another horse battery staple"
	if resp, body := formPost(t, resetter, s.origin+"/auth/password/reset", url.Values{"token": {tokenOf(t, m.link)}, "password": {newPassword}, "confirm": {newPassword}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the reset: %d %.300s", resp.StatusCode, body)
	}
	s.challenged(t, remembered, signIn(remembered, newPassword), "the remembered browser after a reset")
}

// TestBrowserEveryMethodChallenged runs e2e/browser/methods.mjs in
// headless Chromium against the built binary: an OIDC sign-in (the IdP's
// own login form), a guest signing in to that account, and an emailed
// link each land on the challenge with no session of the account, and a
// backup code finishes them.
func TestBrowserEveryMethodChallenged(t *testing.T) {
	chromium, node := browserTools(t)
	s := startSite(t, siteOptions{emailLinks: true, guests: true, idp: true})
	mailbox := httptest.NewServer(mailboxHandler(t, s.sink))
	t.Cleanup(mailbox.Close)
	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	runBrowserScript(t, node, chromium, "methods.mjs", filepath.Join(outDir, "methods-failure.png"),
		[]string{s.origin, mailbox.URL, "owner", idpPassword, outDir})
}

// TestSecondFactorGuessesAtReauthentication: the attack is a stolen
// session and a known password, guessing the second factor at the step-up
// page. The session gets secondfactor.MaxCodeAttempts code tries, as a
// challenge does; then even a right code is refused with 429 and nothing
// is spent, and the code still works where a new sign-in is challenged.
func TestSecondFactorGuessesAtReauthentication(t *testing.T) {
	s := startSite(t, siteOptions{})
	const email, password = "mfa-guesses@example.com", "correct horse battery staple"
	owner := newJarClient(t)
	s.signUp(t, owner, email, password, false)
	userID, _ := s.whoIs(t, owner)
	_, codes := s.enrolTOTP(t, owner)

	form := url.Values{"password": {password}, "redirectTo": {"/"}}
	for i := 1; i <= 5; i++ {
		form.Set("code", fmt.Sprintf("%04d-%04d", i, i))
		if resp, _ := formPost(t, owner, s.origin+"/auth/reauth/password", form); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d; want 401", i, resp.StatusCode)
		}
	}
	form.Set("code", codes[0])
	if resp, page := formPost(t, owner, s.origin+"/auth/reauth/password", form); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "Too many wrong codes") {
		t.Fatalf("a right code after 5 tries: %d; want 429 saying so", resp.StatusCode)
	}
	if amr := s.amr(t, owner); slices.Contains(amr, "otp") {
		t.Fatalf("the session was re-authenticated with a code past its tries: amr %v", amr)
	}
	// The backup code was not spent: a new sign-in's challenge takes it.
	other := newJarClient(t)
	resp, _ := formPost(t, other, s.origin+"/auth/signin/password", url.Values{"email": {email}, "password": {password}})
	s.challenged(t, other, resp, "a new sign-in")
	s.passChallenge(t, other, codes[0], false, userID)
}
