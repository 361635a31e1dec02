package signin

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/pquerna/otp/totp"

	"github.com/convex-auth/caddy-convex-auth/passkey"
	"github.com/convex-auth/caddy-convex-auth/passkey/passkeytest"
	"github.com/convex-auth/caddy-convex-auth/secondfactor"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// mfaEnv is a site with passwords, email links, guests, the OAuth
// providers, passkeys and TOTP, on http://localhost, recording every
// session start.
type mfaEnv struct {
	*env
	keys    *secondfactor.SecretKeys
	op      *testOP
	rcv     *smtpReceiver
	mu      sync.Mutex
	started []Result
}

func newMFAEnv(t *testing.T, mk storeMaker, mode string) *mfaEnv {
	t.Helper()
	return newMFAEnvWith(t, mk, func(sf *SecondFactorConfig) { sf.Mode = mode })
}

// newMFAEnvWith is newMFAEnv with the second factor's policy set by sf.
func newMFAEnvWith(t *testing.T, mk storeMaker, sf func(*SecondFactorConfig)) *mfaEnv {
	t.Helper()
	keys, err := secondfactor.NewSecretKeys("", make([]byte, secondfactor.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	m := &mfaEnv{keys: keys, rcv: signintest.StartSMTP(t, nil, "", "")}
	m.env = newEnvOn(t, mk, func(c *Config, origin string) {
		origin = strings.Replace(origin, "127.0.0.1", "localhost", 1)
		c.Origin = origin
		m.op, c.OAuth = signintest.StartProviders(t, origin)
		c.Mail = &MailConfig{Mailer: signintest.Mailer(m.rcv)}
		c.Password = &PasswordConfig{Argon2: testArgon2, VerifyEmail: VerifyOff}
		c.Email = &EmailConfig{}
		c.Anonymous = &AnonymousConfig{}
		c.Passkey = &passkey.Config{}
		c.SecondFactor = &SecondFactorConfig{Keys: keys}
		sf(c.SecondFactor)
	})
	m.origin = strings.Replace(m.origin, "127.0.0.1", "localhost", 1)
	m.host.results = func(res Result) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.started = append(m.started, res)
	}
	return m
}

// last is the last session start.
func (m *mfaEnv) last() Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.started) == 0 {
		return Result{}
	}
	return m.started[len(m.started)-1]
}

func (m *mfaEnv) starts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.started)
}

// enrolTOTP gives userID the RFC 6238 test secret.
func (m *mfaEnv) enrolTOTP(userID string) {
	m.t.Helper()
	if err := m.svc.Factors().SetTOTP(context.Background(), userID, session.TOTP{Secret: m.keys.Seal(userID, rfcSecret), CreatedAt: m.clock.Now()}); err != nil {
		m.t.Fatal(err)
	}
}

func (m *mfaEnv) code(at time.Time) string {
	c, err := totp.GenerateCodeCustom(rfcSecret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		m.t.Fatal(err)
	}
	return c
}

// passwordUser signs up email in a browser of its own and signs it out.
func (m *mfaEnv) passwordUser(email string) string {
	m.t.Helper()
	b := newBrowser(m.t)
	b.Post(m.origin+"/auth/signin/password", signintest.PasswordForm("signup", email, "correct horse", ""))
	me, ok := b.Whoami(m.origin)
	if !ok {
		m.t.Fatal("sign-up failed")
	}
	return me.UserID
}

// challenged asserts that resp sent the browser to the challenge without
// a session.
func (m *mfaEnv) challenged(b *browser, resp *http.Response) {
	m.t.Helper()
	if resp.StatusCode != http.StatusSeeOther || location(m.t, resp) != m.origin+PathChallenge {
		m.t.Fatalf("not sent to the challenge: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b.Cookie(m.origin, testSessionCookie) != "" {
		m.t.Fatal("a session cookie before the second factor")
	}
	if _, ok := b.Whoami(m.origin); ok {
		m.t.Fatal("signed in before the second factor")
	}
	if resp, page := b.Get(m.origin + PathChallenge); resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="code-form"`) {
		m.m(resp, page)
	}
}

func (m *mfaEnv) m(resp *http.Response, page string) {
	m.t.Helper()
	m.t.Fatalf("challenge page: %d\n%.400s", resp.StatusCode, page)
}

// TestChallengeTOTP: a password sign-in of a user with TOTP is challenged
// with no session; a wrong code and a replayed one are refused; the right
// one starts the session with amr pwd, otp, mfa; a backup code works once;
// five tries end a challenge; another browser has no challenge.
func TestChallengeTOTP(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		m := newMFAEnv(t, mk, "")
		id := m.passwordUser("ada@example.com")
		m.enrolTOTP(id)
		signIn := func(b *browser) *http.Response {
			resp, _ := b.Post(m.origin+"/auth/signin/password", signintest.PasswordForm("signin", "ada@example.com", "correct horse", "/after"))
			return resp
		}
		b := newBrowser(t)
		before := m.starts()
		m.challenged(b, signIn(b))
		if m.starts() != before {
			t.Fatal("a session started before the second factor")
		}
		// Another browser holds no challenge.
		if resp, _ := newBrowser(t).Post(m.origin+PathChallenge, url.Values{"code": {m.code(m.clock.Now())}}); resp.StatusCode != http.StatusSeeOther || !strings.Contains(location(t, resp), "error=challenge_expired") {
			t.Fatalf("a code without the challenge cookie: %d", resp.StatusCode)
		}
		if resp, _ := b.CrossSite(m.origin+PathChallenge, url.Values{"code": {m.code(m.clock.Now())}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a cross-site code: %d", resp.StatusCode)
		}
		// A wrong code goes back to the challenge (post/redirect/get),
		// which says so.
		resp, page := b.Back(b.Post(m.origin+PathChallenge, url.Values{"code": {"000000"}}))
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != PathChallenge || !strings.Contains(page, "not right") {
			t.Fatalf("a wrong code: %d %s", resp.StatusCode, resp.Request.URL)
		}
		good := m.code(m.clock.Now())
		resp, _ = b.Post(m.origin+PathChallenge, url.Values{"code": {good}})
		if resp.StatusCode != http.StatusSeeOther || location(t, resp) != m.origin+"/after" {
			t.Fatalf("the right code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if me, ok := b.Whoami(m.origin); !ok || me.UserID != id {
			t.Fatal("not signed in after the right code")
		}
		if got := m.last().AMR; !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("amr %v; want [pwd otp mfa]", got)
		}
		if b.Cookie(m.origin, cookies.Challenge) != "" {
			t.Fatal("the challenge cookie outlived the challenge")
		}

		// The same code in the same step, from a new sign-in: refused.
		b2 := newBrowser(t)
		m.challenged(b2, signIn(b2))
		if resp, _ := b2.Post(m.origin+PathChallenge, url.Values{"code": {good}}); !strings.Contains(location(t, resp), PathChallenge+"?error=code") {
			t.Fatalf("a replayed code: %d", resp.StatusCode)
		}

		// Backup codes: once each.
		codes, hashes := secondfactor.NewBackupCodes(id)
		if err := m.svc.Factors().SetBackupCodes(context.Background(), id, hashes); err != nil {
			t.Fatal(err)
		}
		if resp, _ := b2.Post(m.origin+PathChallenge, url.Values{"code": {codes[3]}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("a backup code: %d", resp.StatusCode)
		}
		b3 := newBrowser(t)
		m.challenged(b3, signIn(b3))
		if resp, _ := b3.Post(m.origin+PathChallenge, url.Values{"code": {codes[3]}}); !strings.Contains(location(t, resp), PathChallenge+"?error=code") {
			t.Fatalf("a used backup code: %d", resp.StatusCode)
		}
		// Five tries end the challenge, even with the right code after.
		for range secondfactor.MaxCodeAttempts - 1 {
			b3.Post(m.origin+PathChallenge, url.Values{"code": {"111111"}})
		}
		m.clock.Advance(30 * time.Second)
		resp, _ = b3.Post(m.origin+PathChallenge, url.Values{"code": {m.code(m.clock.Now())}})
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(location(t, resp), "error=challenge_dead") {
			t.Fatalf("the sixth try: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if _, ok := b3.Whoami(m.origin); ok {
			t.Fatal("signed in after the challenge ended")
		}
		// It expires.
		b4 := newBrowser(t)
		m.challenged(b4, signIn(b4))
		m.clock.Advance(ChallengeTTL + time.Second)
		if resp, _ := b4.Post(m.origin+PathChallenge, url.Values{"code": {m.code(m.clock.Now())}}); !strings.Contains(location(t, resp), "error=challenge_expired") {
			t.Fatal("an expired challenge was taken")
		}
	})
}

// TestEveryMethodChallenged: an OIDC provider's sign-in, an email link and
// a guest signing in to an account with a factor all meet the challenge
// before any session.
func TestEveryMethodChallenged(t *testing.T) {
	m := newMFAEnv(t, nil, "")
	// The OP's user signs in once to exist, then gets a factor.
	b := newBrowser(t)
	m.op.SignInOAuth(b, m.origin, "zitadel", "")
	me, ok := b.Whoami(m.origin)
	if !ok {
		t.Fatal("the OIDC sign-in failed")
	}
	m.enrolTOTP(me.UserID)

	oidc := newBrowser(t)
	callback := m.op.SignIn(oidc, signintest.StartOAuth(oidc, m.origin, "zitadel", ""))
	resp, _ := oidc.Get(callback)
	m.challenged(oidc, resp)
	if resp, _ := oidc.Post(m.origin+PathChallenge, url.Values{"code": {m.code(m.clock.Now())}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("OIDC then code: %d", resp.StatusCode)
	}
	if got := m.last(); got.Provider != "zitadel" || !slices.Equal(got.AMR, []string{"otp", "mfa"}) {
		t.Fatalf("OIDC then code: %s %v", got.Provider, got.AMR)
	}

	// An email link of a user with a factor.
	first := newBrowser(t)
	signintest.RequestLink(first, m.origin, "lin@example.com", "")
	signintest.UseLink(first, signintest.MailLink(t, m.rcv))
	lin, ok := first.Whoami(m.origin)
	if !ok {
		t.Fatal("the email sign-in failed")
	}
	m.enrolTOTP(lin.UserID)
	mail := newBrowser(t)
	signintest.RequestLink(mail, m.origin, "lin@example.com", "")
	resp, _ = signintest.UseLink(mail, signintest.MailLink(t, m.rcv))
	m.challenged(mail, resp)

	// A guest signing in to an account with a factor.
	grace := m.passwordUser("grace@example.com")
	m.enrolTOTP(grace)
	guest := newBrowser(t)
	guest.Post(m.origin+"/auth/signin/anonymous", url.Values{})
	g, ok := guest.Whoami(m.origin)
	if !ok {
		t.Fatal("no guest")
	}
	resp, _ = guest.Post(m.origin+"/auth/signin/password", signintest.PasswordForm("signin", "grace@example.com", "correct horse", ""))
	if resp.StatusCode != http.StatusSeeOther || location(t, resp) != m.origin+PathChallenge {
		t.Fatalf("the guest's sign-in: %d", resp.StatusCode)
	}
	if still, _ := guest.Whoami(m.origin); still.UserID != g.UserID {
		t.Fatal("the guest became the account before the second factor")
	}
	m.clock.Advance(30 * time.Second)
	if resp, _ := guest.Post(m.origin+PathChallenge, url.Values{"code": {m.code(m.clock.Now())}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the guest's code: %d", resp.StatusCode)
	}
	if got := m.last(); got.User.ID != grace || got.ReplacedUserID != g.UserID {
		t.Fatalf("the guest's session: user %s replaced %q", got.User.ID, got.ReplacedUserID)
	}
}

// TestChallengePasskey: a passkey passes the challenge after a password
// (amr pwd, hwk, mfa); a passkey sign-in that verified its user needs no
// challenge.
func TestChallengePasskey(t *testing.T) {
	m := newMFAEnv(t, nil, "")
	id := m.passwordUser("ada@example.com")
	auth := &passkeytest.Authenticator{Origin: m.origin, UV: true}
	opts, c, err := m.svc.Passkeys().BeginRegistration(id, "ada", "Ada", "Laptop", nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := auth.Create(opts)
	key, err := m.svc.Passkeys().FinishRegistration(c, id, "ada", "Ada", nil, answer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.svc.Factors().AddPasskey(context.Background(), id, key); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	resp, _ := b.Post(m.origin+"/auth/signin/password", signintest.PasswordForm("signin", "ada@example.com", "correct horse", ""))
	if location(t, resp) != m.origin+PathChallenge {
		t.Fatal("not challenged")
	}
	_, page := b.Get(m.origin + PathChallenge)
	if !strings.Contains(page, `data-passkey="factor"`) || strings.Contains(page, `id="code-form"`) {
		t.Fatal("the challenge of a passkey-only user offers no passkey, or a code")
	}
	resp, body := b.Post(m.origin+pathChallengePasskeyOptions, url.Values{})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("options: %d %s", resp.StatusCode, body)
	}
	answer, err = auth.Get([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = b.Post(m.origin+pathChallengePasskey, url.Values{"credential": {string(answer)}})
	if resp.StatusCode != http.StatusSeeOther || location(t, resp) != m.origin+"/" {
		t.Fatalf("the passkey: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := m.last().AMR; !slices.Equal(got, []string{"pwd", "hwk", "mfa"}) {
		t.Fatalf("amr %v", got)
	}

	// The passkey alone, verifying its user: no challenge.
	pk := newBrowser(t)
	_, body = pk.Post(m.origin+PathPasskeyOptions, url.Values{})
	answer, _ = auth.Get([]byte(body))
	resp, _ = pk.Post(m.origin+"/auth/signin/passkey", url.Values{"credential": {string(answer)}})
	if resp.StatusCode != http.StatusSeeOther || location(t, resp) != m.origin+"/" {
		t.Fatalf("passkey sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := m.last(); got.Provider != ProviderPasskey || !slices.Equal(got.AMR, []string{"hwk", "mfa"}) {
		t.Fatalf("passkey sign-in: %s %v", got.Provider, got.AMR)
	}
}

var pendingField = regexp.MustCompile(`name="pending" value="([^"]+)"`)

// TestChallengeRequiredEnrols: under second_factor required, a user
// without a factor enrols an authenticator app at sign-in, before any
// session, and then sees its backup codes once.
func TestChallengeRequiredEnrols(t *testing.T) {
	m := newMFAEnv(t, nil, SecondFactorRequired)
	b := newBrowser(t)
	resp, _ := b.Post(m.origin+"/auth/signin/password", signintest.PasswordForm("signup", "ada@example.com", "correct horse", ""))
	if location(t, resp) != m.origin+PathChallenge {
		t.Fatal("a user without a factor was not sent to enrol")
	}
	_, page := b.Get(m.origin + PathChallenge)
	if !strings.Contains(page, "Set up two-step verification") || !strings.Contains(page, "<svg") {
		t.Fatal("no enrolment page")
	}
	secret := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(page)[1]
	pending := pendingField.FindStringSubmatch(page)[1]
	code, _ := totp.GenerateCodeCustom(secret, m.clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if resp, _ := b.Post(m.origin+pathChallengeEnrol, url.Values{"pending": {pending}, "code": {"000000"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a wrong first code: %d", resp.StatusCode)
	}
	resp, page = b.Post(m.origin+pathChallengeEnrol, url.Values{"pending": {pending}, "code": {code}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="backup-codes"`) {
		t.Fatalf("enrolment: %d", resp.StatusCode)
	}
	if me, ok := b.Whoami(m.origin); !ok {
		t.Fatal("no session after enrolling")
	} else if f, _ := m.svc.Factors().Factors(context.Background(), me.UserID); f.TOTP == nil || f.BackupCodes != 10 {
		t.Fatalf("after enrolling: %+v", f)
	}
	if got := m.last().AMR; !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("amr %v", got)
	}
	if m.starts() != 1 {
		t.Fatalf("%d sessions started; want the one after enrolling", m.starts())
	}
}

// TestRememberDevice: a browser that passed the challenge asking to be
// remembered skips it at its next sign-ins, until remember_device ends
// or the user's browsers are forgotten (a reset, sign out everywhere,
// a factor removed); another browser, or one that did not ask, is
// challenged.
func TestRememberDevice(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		m := newMFAEnvWith(t, mk, func(sf *SecondFactorConfig) { sf.RememberDevice = 24 * time.Hour })
		id := m.passwordUser("ada@example.com")
		m.enrolTOTP(id)
		signIn := func(b *browser) *http.Response {
			resp, _ := b.Post(m.origin+"/auth/signin/password", signintest.PasswordForm("signin", "ada@example.com", "correct horse", "/after"))
			return resp
		}
		toChallenge := func(b *browser) {
			t.Helper()
			if resp := signIn(b); resp.StatusCode != http.StatusSeeOther || location(t, resp) != m.origin+PathChallenge {
				t.Fatalf("a browser not remembered was not challenged: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		pass := func(b *browser, remember bool) {
			t.Helper()
			toChallenge(b)
			if _, page := b.Get(m.origin + PathChallenge); !strings.Contains(page, "Remember this browser for 1 day") {
				t.Fatal("the challenge offers no remember this browser")
			}
			form := url.Values{"code": {m.code(m.clock.Now())}}
			if remember {
				form.Set("remember", "1")
			}
			if resp, _ := b.Post(m.origin+PathChallenge, form); resp.StatusCode != http.StatusSeeOther || location(t, resp) != m.origin+"/after" {
				t.Fatalf("the right code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			m.clock.Advance(30 * time.Second) // the next code is a new step
		}
		skipped := func(b *browser) {
			t.Helper()
			if resp := signIn(b); resp.StatusCode != http.StatusSeeOther || location(t, resp) != m.origin+"/after" {
				t.Fatalf("a remembered browser was challenged: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			if me, ok := b.Whoami(m.origin); !ok || me.UserID != id {
				t.Fatal("a remembered browser is not signed in")
			}
		}
		b, other := newBrowser(t), newBrowser(t)
		pass(b, true)
		skipped(b)
		if got := m.last().AMR; slices.Contains(got, AMROTP) || slices.Contains(got, AMRMFA) {
			t.Fatalf("amr of a remembered browser's sign-in: %v; want the password's alone (one factor was checked)", got)
		}
		pass(other, false)
		toChallenge(other)

		m.clock.Advance(24 * time.Hour)
		pass(b, true)
		skipped(b)
		m.svc.ForgetDevices(context.Background(), nil, nil, id)
		toChallenge(b)
	})
}
