package signintest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Browser keeps cookies and never follows redirects by itself.
type Browser struct {
	T *testing.T
	C *http.Client
	// posted is the last form Post or Fetch sent, whose typed values Back
	// checks the redirect for.
	posted url.Values
}

// NewBrowser is a browser with an empty cookie jar.
func NewBrowser(t *testing.T) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, C: &http.Client{Jar: jar, Timeout: time.Minute, // a bound only: argon2 under -race on a starved CPU is slow
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Agent is a browser that sends User-Agent ua.
func Agent(t *testing.T, ua string) *Browser {
	b := NewBrowser(t)
	b.C.Transport = uaTransport{ua}
	return b
}

type uaTransport struct{ ua string }

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return http.DefaultTransport.RoundTrip(r)
}

// Do sends req and reads the whole answer.
func (b *Browser) Do(req *http.Request) (*http.Response, string) {
	b.T.Helper()
	resp, err := b.C.Do(req)
	if err != nil {
		b.T.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// Get opens u.
func (b *Browser) Get(u string) (*http.Response, string) {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.T.Fatal(err)
	}
	return b.Do(req)
}

// Post submits a form as the site's own page does in a browser: a
// navigation (Sec-Fetch-Mode navigate, Accept text/html) from the
// target's origin.
func (b *Browser) Post(u string, form url.Values) (*http.Response, string) {
	b.T.Helper()
	req := b.formRequest(u, form)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	return b.Do(req)
}

// Fetch posts a form as a script on the site's page does (fetch): same
// origin, not a navigation.
func (b *Browser) Fetch(u string, form url.Values) (*http.Response, string) {
	b.T.Helper()
	req := b.formRequest(u, form)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("Sec-Fetch-Dest", "empty")
	req.Header.Set("Accept", "*/*")
	return b.Do(req)
}

func (b *Browser) formRequest(u string, form url.Values) *http.Request {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
	b.posted = form
	return req
}

// Back follows the answer to a failed form post from a page: it must be
// a 303 back to a page of the same site whose URL holds none of the
// form's typed values (password, email, code, token...) and carries the
// error's code; Back loads that page, as the browser does, and returns
// it. A reload of it posts nothing.
func (b *Browser) Back(resp *http.Response, body string) (*http.Response, string) {
	b.T.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		b.T.Fatalf("a failed form post answered %d; want 303 back to the form: %.300s", resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		b.T.Fatal(err)
	}
	if loc.Host != resp.Request.URL.Host || loc.Query().Get("error") == "" {
		b.T.Fatalf("a failed form post went to %s; want a page of this site with ?error=", loc)
	}
	// Every part of the URL but the error's code, decoded.
	parts := []string{loc.Path}
	for k, vs := range loc.Query() {
		if k != "error" {
			parts = append(parts, vs...)
		}
	}
	for name, values := range b.posted {
		switch name {
		case "intent", "redirectTo", "provider", "others", "mode":
			continue // the form's own, not typed
		}
		for _, v := range values {
			for _, part := range parts {
				if len(v) >= 4 && strings.Contains(part, v) {
					b.T.Fatalf("the redirect after a failed post holds the form's %s: %s", name, loc)
				}
			}
		}
	}
	return b.Get(loc.String())
}

// CrossSite posts form as another site's page would.
func (b *Browser) CrossSite(u string, form url.Values) (*http.Response, string) {
	b.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	return b.Do(req)
}

// Whoami asks the site who this browser is signed in as.
func (b *Browser) Whoami(origin string) (Whoami, bool) {
	b.T.Helper()
	resp, body := b.Get(origin + "/whoami")
	if resp.StatusCode != http.StatusOK {
		return Whoami{}, false
	}
	var w Whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		b.T.Fatal(err)
	}
	return w, true
}

// Who is the user this browser is signed in as; the test fails when it is
// signed out.
func (b *Browser) Who(origin string) Whoami {
	b.T.Helper()
	w, ok := b.Whoami(origin)
	if !ok {
		b.T.Fatal("not signed in")
	}
	return w
}

// Cookie is the value of the browser's cookie name for origin, or "".
func (b *Browser) Cookie(origin, name string) string {
	u, _ := url.Parse(origin)
	for _, c := range b.C.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// Succeeded reports whether a form post's answer led on: a 303 to a page
// that carries no ?error= (a failed post from a page is a 303 too, back
// to its form with the error).
func Succeeded(resp *http.Response) bool {
	if resp.StatusCode != http.StatusSeeOther {
		return false
	}
	loc, err := resp.Location()
	return err == nil && loc.Query().Get("error") == ""
}

// Location resolves the response's Location against the request URL.
func Location(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("status %d without a Location: %v", resp.StatusCode, err)
	}
	return loc.String()
}

// PasswordForm is the sign-in page's password form.
func PasswordForm(intent, email, password, redirectTo string) url.Values {
	f := url.Values{"intent": {intent}, "email": {email}, "password": {password}}
	if redirectTo != "" {
		f.Set("redirectTo", redirectTo)
	}
	return f
}
