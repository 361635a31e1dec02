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

// Post sends a form as the site's own page would (Origin of the target).
func (b *Browser) Post(u string, form url.Values) (*http.Response, string) {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
	return b.Do(req)
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
