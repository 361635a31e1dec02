package signin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// A form posted from a page that fails is answered with a redirect back
// to the form's page (post/redirect/get), so that reloading the page that
// shows the error does not post the form again. The error's code goes in
// the URL (?error=); what the page restores (the typed email, a mailed
// link's token, a rate limit's wait) goes in the flash cookie: sealed,
// HttpOnly, for that page's path only, for FlashTTL. Neither a password
// nor the typed email is ever in a URL. A script's post (fetch) gets the
// status and page it always got.

// FlashTTL is how long the page a failed form post returns to can restore
// what was typed: long enough to read the error and reload.
const FlashTTL = 10 * time.Minute

const (
	// flashCookieName is prefixed __Secure- over HTTPS (__Host- needs
	// Path=/, and the flash is for one page's path).
	flashCookieName       = cookies.Form
	secureFlashCookieName = "__Secure-" + flashCookieName
	// flashPurpose binds a sealed flash to its use; the realm and the
	// page's path follow it, so a flash opens for that page only.
	flashPurpose = "convex_auth form flash v1"
)

// FormBack is the page a failed form post returns to.
type FormBack struct {
	// Path is the form page's path; Query holds its other parameters
	// (mode, redirectTo), never a typed value or a secret.
	Path  string
	Query url.Values
	// Email is the typed address the page prefills; Token the mailed
	// link's token that the page posts again.
	Email string
	Token string
}

// flash is what the flash cookie holds, sealed.
type flash struct {
	Email   string `json:"e,omitempty"`
	Token   string `json:"t,omitempty"`
	Wait    int    `json:"w,omitempty"` // seconds: the refusal's Retry-After
	Expires int64  `json:"x"`           // Unix ms
}

// FailForm answers a request that failed with the error code. A form
// posted from a page (httprule.Navigates) goes back to its form: 303 to
// back with ?error=code, what the page restores in the flash cookie. Any
// other request (a script's fetch, a page's GET) is answered by render, as
// it always was.
func (s *Service) FailForm(w http.ResponseWriter, r *http.Request, code string, back FormBack, render func()) {
	if r.Method != http.MethodPost || !httprule.Navigates(r) {
		render()
		return
	}
	q := url.Values{}
	for k, v := range back.Query {
		q[k] = v
	}
	q.Set("error", code)
	f := flash{Email: truncate(back.Email, session.MaxEmailBytes), Token: back.Token}
	if len(f.Token) > 2*randomBytes {
		f.Token = ""
	}
	if wait, err := strconv.Atoi(w.Header().Get("Retry-After")); err == nil && wait > 0 {
		f.Wait = wait
	}
	s.setFlash(w, r, back.Path, f)
	Redirect(w, r, back.Path+"?"+q.Encode())
}

// failSignIn answers a failure with the sign-in page showing code (a
// form's post goes back to it).
func (s *Service) failSignIn(w http.ResponseWriter, r *http.Request, status int, code string) {
	d := s.Page(r, "signin", code)
	s.FailForm(w, r, code, s.signInBack("signin", d.RedirectTo, ""), func() { s.Render(w, r, status, d) })
}

// signInBack is the sign-in page in mode with redirectTo, as a failed
// form's way back.
func (s *Service) signInBack(mode, redirectTo, email string) FormBack {
	q := url.Values{}
	if mode == "signup" {
		q.Set("mode", mode)
	}
	if redirectTo != "" && redirectTo != s.cfg.Redirects.AfterSignIn {
		q.Set("redirectTo", redirectTo)
	}
	return FormBack{Path: PathSignIn, Query: q, Email: email}
}

func (s *Service) flashCookie(r *http.Request) string {
	if httprule.SecureRequest(r) {
		return secureFlashCookieName + s.cookieSuffix
	}
	return flashCookieName + s.cookieSuffix
}

func (s *Service) flashAAD(path string) []byte {
	return []byte(flashPurpose + "\x00" + s.cfg.Realm + "\x00" + path)
}

// setFlash keeps f for the page at path, or forgets what was kept for it
// when f is empty.
func (s *Service) setFlash(w http.ResponseWriter, r *http.Request, path string, f flash) {
	c := &http.Cookie{Name: s.flashCookie(r), Path: path, MaxAge: -1,
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode}
	if f != (flash{}) {
		f.Expires = s.now().Add(FlashTTL).UnixMilli()
		c.Value, c.MaxAge = s.flowKeys.Seal(marshal(f), s.flashAAD(path)), int(FlashTTL/time.Second)
	}
	http.SetCookie(w, c)
}

// flash is what a failed form post left for the page r loads; empty when
// nothing was left, or it expired or does not open.
func (s *Service) flash(r *http.Request) flash {
	// A flash of an enclosing path (/auth/verify within /auth/verify/resend)
	// comes too, and does not open here.
	for _, c := range r.CookiesNamed(s.flashCookie(r)) {
		var f flash
		plain, err := s.flowKeys.Open(r.Context(), c.Value, s.flashAAD(r.URL.Path))
		if err == nil && json.Unmarshal(plain, &f) == nil && s.now().UnixMilli() < f.Expires {
			return f
		}
	}
	return flash{}
}
