package signin

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// newLockoutEnv is a password site whose clients are told apart by the
// X-Client header (as Caddy's trusted_proxies would by X-Forwarded-For).
func newLockoutEnv(t *testing.T, more func(c *Config)) *env {
	return newEnv(t, func(c *Config, origin string) {
		c.Password = &PasswordConfig{Argon2: testArgon2}
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Client") }
		c.Limits.SignIn = session.Rate{Events: 10000, Per: time.Minute}
		if more != nil {
			more(c)
		}
	})
}

// signInFrom posts a password sign-in from client ip.
func (e *env) signInFrom(b *browser, ip, email, password string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.origin+"/auth/signin/password", strings.NewReader(passwordForm("signin", email, password, "").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.origin)
	req.Header.Set("X-Client", ip)
	return b.Do(req)
}

// TestLockoutIsPerClient: ten wrong passwords from one client refuse that
// client for the account, not the owner on another one.
func TestLockoutIsPerClient(t *testing.T) {
	e := newLockoutEnv(t, nil)
	newBrowser(t).Post(e.origin+"/auth/signin/password", passwordForm("signup", adaEmail, adaPass, ""))
	attacker := newBrowser(t)
	for range DefaultMaxAttempts {
		e.signInFrom(attacker, "203.0.113.1", adaEmail, "a guess")
	}
	if resp, body := e.signInFrom(attacker, "203.0.113.1", adaEmail, adaPass); resp.StatusCode != http.StatusTooManyRequests || !pageShows(body, "too_many_attempts") {
		t.Fatalf("the guessing client with the right password: %d; want 429", resp.StatusCode)
	}
	if resp, _ := e.signInFrom(newBrowser(t), "198.51.100.7", adaEmail, adaPass); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the owner on another client: %d; want a sign-in", resp.StatusCode)
	}
}

// TestLockoutSparesKnownBrowsers: past the per-account ceiling, failures
// from clients the account does not know lock it against such clients for
// a delay that doubles (1 s, 2 s, 4 s); a browser that signed in to the
// account before is exempt.
func TestLockoutSparesKnownBrowsers(t *testing.T) {
	e := newLockoutEnv(t, nil)
	owner := newBrowser(t)
	owner.Post(e.origin+"/auth/signin/password", passwordForm("signup", adaEmail, adaPass, ""))
	owner.Post(e.origin+"/auth/signout", url.Values{})
	// The ceiling's worth of failures, ten from each of many clients.
	for i := range AccountCeiling {
		resp, _ := e.signInFrom(newBrowser(t), "203.0.113."+strconv.Itoa(i/DefaultMaxAttempts), adaEmail, "a guess")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d; want 401 (within the ceiling)", i+1, resp.StatusCode)
		}
	}
	if resp, _ := e.signInFrom(newBrowser(t), "198.51.100.1", adaEmail, adaPass); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a new browser at the ceiling, right password: %d; want a sign-in", resp.StatusCode)
	}
	for _, wantWait := range []string{"1", "2", "4"} {
		e.signInFrom(newBrowser(t), "203.0.113.200", adaEmail, "a guess")
		resp, body := e.signInFrom(newBrowser(t), "198.51.100.2", adaEmail, adaPass)
		if resp.StatusCode != http.StatusTooManyRequests || !pageWaits(body, "account_locked") || resp.Header.Get("Retry-After") != wantWait {
			t.Fatalf("a new browser past the ceiling: %d, Retry-After %q; want 429 for %s s", resp.StatusCode, resp.Header.Get("Retry-After"), wantWait)
		}
		if resp, _ := e.signInFrom(owner, "203.0.113.200", adaEmail, adaPass); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the owner's known browser during the lock (even from the guessing address): %d; want a sign-in", resp.StatusCode)
		}
		owner.Post(e.origin+"/auth/signout", url.Values{})
		e.clock.Advance(5 * time.Second)
	}
}

// TestGlobalSignInLimitCountsFailuresOnly: limits { global_sign_in }
// counts failed sign-ins site-wide, not successes; once spent, browsers
// an account does not know wait, known ones do not.
func TestGlobalSignInLimitCountsFailuresOnly(t *testing.T) {
	var limited []string
	e := newLockoutEnv(t, func(c *Config) {
		c.Limits.GlobalSignIn = session.Rate{Events: 3, Per: time.Hour}
		c.OnLimited = func(l string) { limited = append(limited, l) }
	})
	owner := newBrowser(t)
	owner.Post(e.origin+"/auth/signin/password", passwordForm("signup", adaEmail, adaPass, ""))
	for i := range 5 {
		if resp, _ := e.signInFrom(newBrowser(t), "198.51.100.9", adaEmail, adaPass); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("success %d: %d; successes do not count", i+1, resp.StatusCode)
		}
	}
	for i := range 4 {
		e.signInFrom(newBrowser(t), "203.0.113."+strconv.Itoa(i), "nobody"+strconv.Itoa(i)+"@example.com", "a guess")
	}
	resp, body := e.signInFrom(newBrowser(t), "198.51.100.9", adaEmail, adaPass)
	if resp.StatusCode != http.StatusTooManyRequests || !pageWaits(body, "busy_sign_in") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a new browser once the site's failures are spent: %d; want 429", resp.StatusCode)
	}
	if strings.Join(limited, ",") != LimitGlobalSignIn {
		t.Fatalf("limits reported %v; want %s", limited, LimitGlobalSignIn)
	}
	if resp, _ := e.signInFrom(owner, "198.51.100.9", adaEmail, adaPass); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a known browser: %d; want a sign-in", resp.StatusCode)
	}
}

// pageWaits reports whether the page holds the message of code, whose
// wait in words is filled in.
func pageWaits(page, code string) bool {
	before, _, _ := strings.Cut(messages[code], "%s")
	return before != "" && strings.Contains(page, template.HTMLEscapeString(before))
}
