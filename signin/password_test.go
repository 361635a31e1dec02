package signin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

func newPasswordEnv(t *testing.T) *env {
	return newEnv(t, func(c *Config, origin string) {
		c.Password = &PasswordConfig{Argon2: testArgon2}
	})
}

var passwordForm = signintest.PasswordForm

func TestPasswordSignUpAndSignIn(t *testing.T) {
	e := newPasswordEnv(t)
	b := newBrowser(t)
	resp, body := b.Post(e.origin+"/auth/signin/password", passwordForm("signup", " Ada@Example.com ", "correct horse", "/loggedin"))
	if !succeeded(resp) || location(t, resp) != e.origin+"/loggedin" {
		t.Fatalf("sign-up: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	first, ok := b.Whoami(e.origin)
	if !ok || first.Email != "ada@example.com" || first.EmailVerified || first.Provider != "password" {
		t.Fatalf("after sign-up: %+v, %v; want the normalised, unverified email", first, ok)
	}
	acct, err := e.store.GetAccount(context.Background(), "password", "ada@example.com")
	if err != nil || !strings.HasPrefix(acct.Secret, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(acct.Secret, "correct horse") {
		t.Fatalf("stored credential %+v, %v; want an argon2id PHC string", acct, err)
	}

	b2 := newBrowser(t)
	resp, _ = b2.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ADA@example.com", "correct horse", ""))
	if !succeeded(resp) || location(t, resp) != e.origin+"/" {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	second, _ := b2.Whoami(e.origin)
	if second.UserID != first.UserID || second.SessionID == first.SessionID {
		t.Fatalf("sign-in found user %s session %s; want %s and a new session", second.UserID, second.SessionID, first.UserID)
	}
}

func TestPasswordWrongAndUnknownLookAlike(t *testing.T) {
	e := newPasswordEnv(t)
	b := newBrowser(t)
	b.Post(e.origin+"/auth/signin/password", passwordForm("signup", "ada@example.com", "correct horse", ""))
	// From a page: both go back to the same sign-in page.
	bw, bu := newBrowser(t), newBrowser(t)
	wrong, _ := bw.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "wrong horse", ""))
	unknown, _ := bu.Post(e.origin+"/auth/signin/password", passwordForm("signin", "nobody@example.com", "wrong horse", ""))
	if location(t, wrong) != location(t, unknown) {
		t.Fatalf("wrong password sent to %s, unknown email to %s; want the same page", location(t, wrong), location(t, unknown))
	}
	_, wrongBody := bw.Back(wrong, "")
	_, unknownBody := bu.Back(unknown, "")
	// From a script: the same 401.
	wrongFetch, wrongFetchBody := newBrowser(t).Fetch(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "wrong horse", ""))
	unknownFetch, unknownFetchBody := newBrowser(t).Fetch(e.origin+"/auth/signin/password", passwordForm("signin", "nobody@example.com", "wrong horse", ""))
	if wrongFetch.StatusCode != http.StatusUnauthorized || unknownFetch.StatusCode != wrongFetch.StatusCode {
		t.Fatalf("fetch: wrong password %d, unknown email %d; want the same 401", wrongFetch.StatusCode, unknownFetch.StatusCode)
	}
	for _, pair := range [][2]string{{wrongBody, unknownBody}, {wrongFetchBody, unknownFetchBody}} {
		if !pageShows(pair[0], "credentials") || !pageShows(pair[1], "credentials") {
			t.Fatal("both must say the email or password is incorrect")
		}
		// Apart from the email echoed into the form, the pages are the same.
		if strings.ReplaceAll(pair[0], "ada@example.com", "X") != strings.ReplaceAll(pair[1], "nobody@example.com", "X") {
			t.Fatal("the answers for a wrong password and an unknown email differ")
		}
	}
}

func TestPasswordAttemptLimit(t *testing.T) {
	e := newPasswordEnv(t)
	newBrowser(t).Post(e.origin+"/auth/signin/password", passwordForm("signup", "ada@example.com", "correct horse", ""))
	b := newBrowser(t)
	for i := 1; i <= DefaultMaxAttempts; i++ {
		resp, body := b.Back(b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "wrong horse", "")))
		if resp.StatusCode != http.StatusOK || !pageShows(body, "credentials") {
			t.Fatalf("failed attempt %d: %d; want the sign-in page saying the password is wrong", i, resp.StatusCode)
		}
	}
	// The 11th is refused even with the right password.
	resp, body := b.Back(b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "correct horse", "")))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "too_many_attempts") {
		t.Fatalf("11th attempt: %d; want the sign-in page with a clear message", resp.StatusCode)
	}
	if resp, _ := newBrowser(t).Fetch(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "correct horse", "")); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("12th attempt, by a script: %d; want 429", resp.StatusCode)
	}
	if _, ok := b.Whoami(e.origin); ok {
		t.Fatal("signed in past the attempt limit")
	}
	// An unknown account is limited the same way: no existence hint.
	for range DefaultMaxAttempts {
		b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "nobody@example.com", "x", ""))
	}
	if resp, body := b.Back(b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "nobody@example.com", "x", ""))); !pageShows(body, "too_many_attempts") {
		t.Fatalf("unknown account past the limit: %d; want too_many_attempts too", resp.StatusCode)
	}
	// The window ends after an hour.
	e.clock.Advance(DefaultAttemptWindow)
	resp, _ = b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "correct horse", ""))
	if !succeeded(resp) {
		t.Fatalf("after the window: %d; want a sign-in", resp.StatusCode)
	}
}

func TestPasswordSuccessResetsTheCount(t *testing.T) {
	e := newPasswordEnv(t)
	b := newBrowser(t)
	b.Post(e.origin+"/auth/signin/password", passwordForm("signup", "ada@example.com", "correct horse", ""))
	for range DefaultMaxAttempts - 1 {
		b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "wrong", ""))
	}
	if resp, _ := b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "correct horse", "")); !succeeded(resp) {
		t.Fatalf("10th attempt, right password: %d", resp.StatusCode)
	}
	for i := range DefaultMaxAttempts {
		if resp, body := b.Back(b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "wrong", ""))); !pageShows(body, "credentials") {
			t.Fatalf("attempt %d after a success: %d; want credentials (count reset)", i+1, resp.StatusCode)
		}
	}
}

func TestPasswordSignUpRules(t *testing.T) {
	e := newPasswordEnv(t)
	b := newBrowser(t)
	cases := []struct {
		name, email, password string
		status                int
		code                  string
	}{
		{"short password", "ada@example.com", "1234567", http.StatusBadRequest, "password_short"},
		{"long password", "ada@example.com", strings.Repeat("p", MaxPasswordLength+1), http.StatusBadRequest, "password_long"},
		{"bad email", "not an email", "correct horse", http.StatusBadRequest, "bad_email"},
		{"display name", "Ada <ada@example.com>", "correct horse", http.StatusBadRequest, "bad_email"},
		{"header injection", "ada@example.com\r\nBcc: x@example.com", "correct horse", http.StatusBadRequest, "bad_email"},
	}
	for _, c := range cases {
		resp, body := b.Back(b.Post(e.origin+"/auth/signin/password", passwordForm("signup", c.email, c.password, "")))
		shows := pageShows(body, c.code)
		if c.code == "password_short" {
			shows = strings.Contains(body, "at least 8 characters")
		}
		if resp.StatusCode != http.StatusOK || !shows || !strings.Contains(body, "<h1>Create an account</h1>") {
			t.Errorf("%s: %d; want the sign-up page with %s", c.name, resp.StatusCode, c.code)
		}
		if resp, _ := newBrowser(t).Fetch(e.origin+"/auth/signin/password", passwordForm("signup", c.email, c.password, "")); resp.StatusCode != c.status {
			t.Errorf("%s by a script: %d; want %d", c.name, resp.StatusCode, c.status)
		}
	}
	// Signing up twice: the second is told to sign in, and gets no session.
	b.Post(e.origin+"/auth/signin/password", passwordForm("signup", "grace@example.com", "correct horse", ""))
	b2 := newBrowser(t)
	resp, body := b2.Back(b2.Post(e.origin+"/auth/signin/password", passwordForm("signup", "grace@example.com", "another horse", "")))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "account_exists") {
		t.Fatalf("second sign-up: %d; want account_exists", resp.StatusCode)
	}
	if _, ok := b2.Whoami(e.origin); ok {
		t.Fatal("a second sign-up with another password signed in")
	}
	// With the right password, signing up again just signs in.
	resp, _ = b2.Post(e.origin+"/auth/signin/password", passwordForm("signup", "grace@example.com", "correct horse", ""))
	if !succeeded(resp) {
		t.Fatalf("sign-up with the account's password: %d; want a sign-in", resp.StatusCode)
	}
}

func TestPasswordFormIsSameOriginOnly(t *testing.T) {
	e := newPasswordEnv(t)
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodPost, e.origin+"/auth/signin/password", strings.NewReader(passwordForm("signup", "ada@example.com", "correct horse", "").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, body := b.Do(req)
	if resp.StatusCode != http.StatusForbidden || !pageShows(body, "cross_site") {
		t.Fatalf("cross-site post: %d; want 403 with a clear page", resp.StatusCode)
	}
	if _, err := e.store.GetAccount(context.Background(), "password", "ada@example.com"); err == nil {
		t.Fatal("a cross-site post created an account")
	}
	if resp, _ := b.Get(e.origin + "/auth/signin/password"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /auth/signin/password: %d; want 405", resp.StatusCode)
	}
}

func TestPasswordStoreDown(t *testing.T) {
	e := newPasswordEnv(t)
	_ = e.store.Close()
	b := newBrowser(t)
	resp, body := b.Back(b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "x", "")))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "unavailable") {
		t.Fatalf("store down: %d; want the sign-in page saying so", resp.StatusCode)
	}
	if resp, body := newBrowser(t).Fetch(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "x", "")); resp.StatusCode != http.StatusServiceUnavailable || !pageShows(body, "unavailable") {
		t.Fatalf("store down, by a script: %d; want 503", resp.StatusCode)
	}
}

func TestHashPassword(t *testing.T) {
	hash, err := HashPassword("correct horse", DefaultArgon2Params)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || len(strings.Split(hash, "$")) != 6 {
		t.Fatalf("hash %q is not the PHC argon2id form", hash)
	}
	again, _ := HashPassword("correct horse", DefaultArgon2Params)
	if again == hash {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horse ": false, "": false} {
		if ok, err := VerifyPassword(pw, hash); err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaA"} {
		if ok, err := VerifyPassword("x", bad); ok || err == nil {
			t.Errorf("VerifyPassword on %q = %v, %v; want an error", bad, ok, err)
		}
	}
}

// BenchmarkHashPassword shows the cost of one hash at the defaults.
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple", DefaultArgon2Params); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCommonPasswordsAreRefused: one of the 10,000 most common passwords,
// in any letter case, is refused at sign-up and at reset, and the page
// says why; nothing is created or changed.
func TestCommonPasswordsAreRefused(t *testing.T) {
	e, rcv := newMailEnv(t, nil, VerifyOff, nil)
	b := newBrowser(t)
	resp, body := b.Back(e.signUp(b, adaEmail, "PassWord"))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "password_common") {
		t.Fatalf("sign-up with a common password: %d; want the form again saying why", resp.StatusCode)
	}
	if _, err := e.store.GetAccount(context.Background(), ProviderPassword, adaEmail); err == nil {
		t.Fatal("an account was made with a common password")
	}
	e.signUp(b, adaEmail, adaPass)
	sent := rcv.Count()
	e.forgot(b, adaEmail)
	link, _ := linkAndCode(t, waitMailTo(t, rcv, sent, adaEmail, "/auth/password/reset?token="))
	action, token := tokenOf(t, link)
	resp, body = b.Back(b.Post(action, url.Values{"token": {token}, "password": {"qwertyuiop"}, "confirm": {"qwertyuiop"}}))
	if resp.StatusCode != http.StatusOK || !pageShows(body, "password_common") {
		t.Fatalf("reset to a common password: %d; want the form again saying why", resp.StatusCode)
	}
	if e.signsIn(adaEmail, "qwertyuiop") || !e.signsIn(adaEmail, adaPass) {
		t.Fatal("a refused reset changed the password")
	}
}
