package signin

import (
	"net/http"
	"net/url"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// The answers every sign-in step gives: on, back with an error, or a
// refused form.

// report tells OnResult how a request that finishes a sign-in of provider
// went. Only method finishes one: other methods (the magic link's GET page,
// a stray HEAD) are refused or lead on, and are not counted.
func (s *Service) report(r *http.Request, method, provider string, signedIn bool) {
	if s.cfg.OnResult != nil && r.Method == method {
		s.cfg.OnResult(provider, signedIn)
	}
}

// Redirect sends the browser on after a sign-in or account step: 303, so
// that a form post becomes a GET, and never cached.
func Redirect(w http.ResponseWriter, r *http.Request, target string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// fail sends the browser back to the sign-in page with an error code.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, code, redirectTo string) {
	q := url.Values{"error": {code}}
	if redirectTo != "" && redirectTo != s.cfg.Redirects.AfterSignIn {
		q.Set("redirectTo", redirectTo)
	}
	Redirect(w, r, PathSignIn+"?"+q.Encode())
}

// ReadForm checks a posted form: POST, same origin, small. A refusal is
// answered with the sign-in page (an unreadable form from a page goes back
// to it).
func (s *Service) ReadForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.Render(w, r, http.StatusMethodNotAllowed, s.Page(r, "signin", "method"))
		return false
	}
	if !s.cfg.Host.SameOrigin(r) {
		s.Render(w, r, http.StatusForbidden, s.Page(r, "signin", "cross_site"))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, httprule.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.failSignIn(w, r, http.StatusBadRequest, "bad_form")
		return false
	}
	return true
}
