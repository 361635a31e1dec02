package signin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// A wrong password posted from the sign-in page comes back to it: 303 with
// the error's code (the mode and redirectTo kept, neither the email nor the
// password in the URL), the typed email in a sealed, path-bound flash
// cookie; loading that page again shows the error and posts nothing.
func TestFailedPagePostComesBackToTheForm(t *testing.T) {
	e := newPasswordEnv(t)
	newBrowser(t).Post(e.origin+"/auth/signin/password", passwordForm("signup", "ada@example.com", "correct horse", ""))
	e.results.take()
	b := newBrowser(t)
	resp, body := b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "wrong horse", "/loggedin"))
	if resp.StatusCode != http.StatusSeeOther || location(t, resp) != e.origin+"/auth/signin?error=credentials&redirectTo=%2Floggedin" {
		t.Fatalf("wrong password from the page: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the redirect may be cached")
	}
	var flash *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == flashCookieName {
			flash = c
		}
	}
	if flash == nil || !flash.HttpOnly || flash.SameSite != http.SameSiteLaxMode || flash.Path != PathSignIn ||
		flash.MaxAge != int(FlashTTL/time.Second) || strings.Contains(flash.Value, "ada") {
		t.Fatalf("flash cookie %+v; want HttpOnly, SameSite=Lax, Path=%s, Max-Age %s, sealed", flash, PathSignIn, FlashTTL)
	}
	for range 2 { // the page, then a reload
		resp, page := b.Back(resp, body)
		if resp.StatusCode != http.StatusOK || !pageShows(page, "credentials") || !strings.Contains(page, `value="ada@example.com"`) ||
			!strings.Contains(page, `name="redirectTo" value="/loggedin"`) {
			t.Fatalf("the page after the failure: %d, want the error, the email and redirectTo:\n%s", resp.StatusCode, page)
		}
	}
	if got := e.results.take(); got != "password:false" {
		t.Fatalf("sign-in results %q; want the one failed post, no more", got)
	}
	// A sign-up keeps its mode.
	resp, body = b.Post(e.origin+"/auth/signin/password", passwordForm("signup", "grace@example.com", "short", ""))
	if _, page := b.Back(resp, body); location(t, resp) != e.origin+"/auth/signin?error=password_short&mode=signup" ||
		!strings.Contains(page, "<h1>Create an account</h1>") || !strings.Contains(page, `value="grace@example.com"`) {
		t.Fatalf("a refused sign-up went to %s", location(t, resp))
	}
	// A script's post keeps its answer: the status and the page.
	resp, page := newBrowser(t).Fetch(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "wrong horse", ""))
	if resp.StatusCode != http.StatusUnauthorized || !pageShows(page, "credentials") || len(resp.Cookies()) != 0 {
		t.Fatalf("a script's wrong password: %d, cookies %v; want 401 and the page, no flash", resp.StatusCode, resp.Cookies())
	}
}

// The flash opens only where it was left, only for its time, and only as
// sealed; without it the page shows the error alone.
func TestFlashIsBoundToItsPageAndTime(t *testing.T) {
	e, _ := newMailEnv(t, nil, VerifyOff, nil)
	b := newBrowser(t)
	resp, _ := b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "not an email", "x", ""))
	u, _ := url.Parse(e.origin)
	sealed := b.Cookie(e.origin+PathSignIn, flashCookieName)
	if sealed == "" {
		t.Fatal("no flash was left for the sign-in page")
	}
	// The same value offered to the forgot page opens nothing there.
	b.C.Jar.SetCookies(u, []*http.Cookie{{Name: flashCookieName, Value: sealed, Path: PathForgotPassword}})
	if _, page := b.Get(e.origin + PathForgotPassword + "?error=bad_email"); strings.Contains(page, "not an email") {
		t.Fatal("a flash left for the sign-in page filled the forgot page")
	}
	forged := newBrowser(t)
	forged.C.Jar.SetCookies(u, []*http.Cookie{{Name: flashCookieName, Value: "AAAA" + sealed[4:], Path: PathSignIn}})
	if _, page := forged.Get(location(t, resp)); strings.Contains(page, "not an email") || !pageShows(page, "bad_email") {
		t.Fatal("a forged flash opened, or the error went missing")
	}
	e.clock.Advance(FlashTTL)
	if _, page := b.Get(location(t, resp)); strings.Contains(page, "not an email") || !pageShows(page, "bad_email") {
		t.Fatal("an expired flash still filled the page")
	}
}

// A refusal by a rate limit says on the page it comes back to how long to
// wait, as the refusal's Retry-After said.
func TestRateLimitWaitSurvivesTheRedirect(t *testing.T) {
	e := newEnv(t, func(c *Config, origin string) {
		c.Password = &PasswordConfig{Argon2: testArgon2}
		c.Limits.SignIn = session.Rate{Events: 1, Per: 10 * time.Minute}
	})
	b := newBrowser(t)
	b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "a@example.com", "wrong horse", ""))
	refused, body := b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "b@example.com", "wrong horse", ""))
	wait := refused.Header.Get("Retry-After")
	resp, page := b.Back(refused, body)
	if wait == "" || resp.StatusCode != http.StatusOK || !strings.Contains(page, "Please wait "+waitWords(wait)) || waitWords(wait) == "a moment" {
		t.Fatalf("Retry-After %q; the page after the refusal does not say how long:\n%s", wait, page)
	}
}

// FailForm over HTTPS: the flash is __Secure- (a __Host- cookie must be for
// every path), Secure, for the form's page only.
func TestFlashCookieOverHTTPS(t *testing.T) {
	e := newPasswordEnv(t)
	r := httptest.NewRequest(http.MethodPost, "https://app.example.com/auth/password/forgot", nil)
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	w := httptest.NewRecorder()
	e.svc.FailForm(w, r, "bad_email", FormBack{Path: PathForgotPassword, Email: "ada@example.com"}, func() { t.Fatal("a page's post was rendered") })
	res := w.Result()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != PathForgotPassword+"?error=bad_email" {
		t.Fatalf("%d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	c := res.Cookies()
	if len(c) != 1 || c[0].Name != "__Secure-"+flashCookieName || !c[0].Secure || !c[0].HttpOnly || c[0].Path != PathForgotPassword {
		t.Fatalf("cookies %+v; want one __Secure- flash for %s", c, PathForgotPassword)
	}
	// A GET, or a script's post, is rendered.
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "https://app.example.com/auth/signin", nil),
		httptest.NewRequest(http.MethodPost, "https://app.example.com/auth/signin/password", nil),
	} {
		rendered := false
		e.svc.FailForm(httptest.NewRecorder(), r, "bad_email", FormBack{Path: PathSignIn}, func() { rendered = true })
		if !rendered {
			t.Fatalf("%s without Sec-Fetch-Mode navigate was sent back instead of answered", r.Method)
		}
	}
}
