package signin

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// limitLog records OnLimited calls.
type limitLog struct {
	mu  sync.Mutex
	got []string
}

func (l *limitLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, name)
}

func (l *limitLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := strings.Join(l.got, " ")
	l.got = nil
	return got
}

// fromIP sends requests as the client at ip (the test's ClientIP reads
// X-Test-Client).
func fromIP(b *browser, ip, method, u string, form url.Values) (*http.Response, string) {
	b.T.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req, _ = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	req.Header.Set("X-Test-Client", ip)
	return b.Do(req)
}

func testClientIP(r *http.Request) string {
	if ip := r.Header.Get("X-Test-Client"); ip != "" {
		return ip
	}
	return RemoteIP(r)
}

// expectLimited checks a 429 with Retry-After and the page's words.
func expectLimited(t *testing.T, resp *http.Response, page, code string, maxWait time.Duration) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d; want 429", resp.StatusCode)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxWait+time.Second {
		t.Fatalf("Retry-After %q; want 1s to %s", resp.Header.Get("Retry-After"), maxWait)
	}
	if !strings.Contains(page, "Please wait "+waitWords(resp.Header.Get("Retry-After"))) || !strings.Contains(page, messages[code][:20]) {
		t.Fatalf("the page does not say %s in words:\n%s", code, page)
	}
}

func TestOAuthStartRateLimit(t *testing.T) {
	op := startOP(t)
	limits := new(limitLog)
	e := newEnv(t, func(c *Config, origin string) {
		p, err := provider.NewOIDC(provider.OIDCConfig{Common: provider.Common{Name: "zitadel", ClientID: op.ClientID, ClientSecret: op.Secret}, Issuer: op.Issuer})
		if err != nil {
			t.Fatal(err)
		}
		c.OAuth = []provider.OAuth{p}
		c.ClientIP = testClientIP
		c.OnLimited = limits.add
		c.Limits.OAuthStart = session.Rate{Events: 3, Per: time.Minute}
	})
	b := newBrowser(t)
	start := e.origin + "/auth/signin/zitadel"
	for i := 1; i <= 3; i++ {
		if resp, _ := fromIP(b, "192.0.2.1", http.MethodGet, start, nil); resp.StatusCode != http.StatusFound {
			t.Fatalf("start %d: %d", i, resp.StatusCode)
		}
	}
	resp, page := fromIP(b, "192.0.2.1", http.MethodGet, start, nil)
	expectLimited(t, resp, page, "rate_limited", time.Minute)
	if got := limits.take(); got != LimitOAuthStart {
		t.Fatalf("OnLimited got %q", got)
	}
	// Another client is not affected; the first one's budget refills.
	if resp, _ := fromIP(b, "192.0.2.2", http.MethodGet, start, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("another client: %d", resp.StatusCode)
	}
	e.clock.Advance(time.Minute)
	if resp, _ := fromIP(b, "192.0.2.1", http.MethodGet, start, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("after a minute: %d", resp.StatusCode)
	}
}

func TestSignUpLimitsNeverLockOutSessions(t *testing.T) {
	limits := new(limitLog)
	e := newEnv(t, func(c *Config, origin string) {
		c.Password = &PasswordConfig{Argon2: testArgon2}
		c.ClientIP = testClientIP
		c.OnLimited = limits.add
		c.Limits.SignUp = session.Rate{Events: 2, Per: time.Hour}
		c.Limits.GlobalSignUp = session.Rate{Events: 3, Per: time.Hour}
	})
	signUp := func(b *browser, ip, email string) (*http.Response, string) {
		return fromIP(b, ip, http.MethodPost, e.origin+"/auth/signin/password",
			url.Values{"intent": {"signup"}, "email": {email}, "password": {"correct horse battery"}})
	}
	ada := newBrowser(t)
	for i, email := range []string{"ada@example.com", "ada2@example.com"} {
		b := newBrowser(t)
		if i == 0 {
			b = ada
		}
		if resp, _ := signUp(b, "192.0.2.1", email); !succeeded(resp) {
			t.Fatalf("sign-up %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, page := signUp(newBrowser(t), "192.0.2.1", "ada3@example.com")
	expectLimited(t, resp, page, "rate_limited", time.Hour)
	// The refused client did not use up the global budget: one more fits.
	if resp, _ := signUp(newBrowser(t), "192.0.2.2", "bob@example.com"); !succeeded(resp) {
		t.Fatalf("a second client's sign-up: %d", resp.StatusCode)
	}
	resp, page = signUp(newBrowser(t), "192.0.2.3", "cy@example.com")
	expectLimited(t, resp, page, "busy", time.Hour)
	if got := limits.take(); got != LimitSignUp+" "+LimitGlobalSignUp {
		t.Fatalf("OnLimited got %q", got)
	}
	// The global limit locks nobody out: a session still works, and an
	// existing account still signs in.
	if _, ok := ada.Whoami(e.origin); !ok {
		t.Fatal("the global sign-up limit ended a session")
	}
	resp, _ = fromIP(newBrowser(t), "192.0.2.3", http.MethodPost, e.origin+"/auth/signin/password",
		url.Values{"intent": {"signin"}, "email": {"ada@example.com"}, "password": {"correct horse battery"}})
	if !succeeded(resp) {
		t.Fatalf("signing in to an existing account under the global sign-up limit: %d", resp.StatusCode)
	}
}

func TestPasswordSignInLimitPerClient(t *testing.T) {
	e := newEnv(t, func(c *Config, origin string) {
		c.Password = &PasswordConfig{Argon2: testArgon2}
		c.ClientIP = testClientIP
		c.Limits.SignIn = session.Rate{Events: 2, Per: time.Minute}
	})
	try := func(ip, email string) (*http.Response, string) {
		return fromIP(newBrowser(t), ip, http.MethodPost, e.origin+"/auth/signin/password",
			url.Values{"intent": {"signin"}, "email": {email}, "password": {"wrong password!"}})
	}
	// Different accounts, so the per-account limit is not what refuses.
	try("2001:db8::1", "a@example.com")
	try("2001:db8::2", "b@example.com")
	// The same /64 is the same client.
	resp, page := try("2001:db8::3", "c@example.com")
	expectLimited(t, resp, page, "rate_limited", time.Minute)
	if resp, _ := try("2001:db8:0:1::1", "d@example.com"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another /64: %d; want 401 (wrong password)", resp.StatusCode)
	}
}

func TestEmailSendLimits(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	mailer := signintest.Mailer(rcv)
	mailer.From = "login@example.com"
	e := newEnv(t, func(c *Config, origin string) {
		c.Email = &EmailConfig{Mailer: mailer}
		c.ClientIP = testClientIP
		c.Limits.EmailSend = session.Rate{Events: 2, Per: time.Hour}
		c.Limits.GlobalEmailSend = session.Rate{Events: 3, Per: time.Hour}
	})
	send := func(ip, email string) (*http.Response, string) {
		return fromIP(newBrowser(t), ip, http.MethodPost, e.origin+"/auth/signin/email", url.Values{"email": {email}})
	}
	// Unlimited addresses do not mean unlimited mail.
	send("192.0.2.1", "a@example.com")
	send("192.0.2.1", "b@example.com")
	resp, page := send("192.0.2.1", "c@example.com")
	expectLimited(t, resp, page, "rate_limited", time.Hour)
	if resp, _ := send("192.0.2.2", "d@example.com"); resp.StatusCode != http.StatusOK {
		t.Fatalf("another client: %d", resp.StatusCode)
	}
	resp, page = send("192.0.2.3", "e@example.com")
	expectLimited(t, resp, page, "busy", time.Hour)
	if n := rcv.Count(); n != 3 {
		t.Fatalf("%d mails sent; want 3", rcv.Count())
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":          "192.0.2.1",
		"::ffff:192.0.2.1":   "192.0.2.1",
		"2001:db8::1":        "2001:db8::/64",
		"2001:db8::ffff:1:2": "2001:db8::/64",
		"not-an-ip":          "not-an-ip",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q; want %q", in, got, want)
		}
	}
}
