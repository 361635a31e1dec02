package signin

import (
	"net/http"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// The "last used" hint: after a sign-in the browser keeps the method's
// name (only that) in an HttpOnly cookie, and the sign-in page marks that
// method's button. Scripts cannot read it, and the request path removes
// it from what it forwards upstream, as every gateway cookie
// (internal/cookies).

// lastUsedTTL is browsers' longest cookie life (400 days).
const lastUsedTTL = 400 * 24 * time.Hour

func (s *Service) lastUsedCookie(r *http.Request) string {
	return cookies.Name(cookies.LastUsed, httprule.SecureRequest(r), s.cookieSuffix)
}

// rememberMethod sets the hint to method.
func (s *Service) rememberMethod(w http.ResponseWriter, r *http.Request, method string) {
	http.SetCookie(w, &http.Cookie{Name: s.lastUsedCookie(r), Value: method, Path: "/", MaxAge: int(lastUsedTTL / time.Second),
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode})
}

// lastUsed is the method the browser last signed in with, when it is one
// of this site's: an OAuth provider, password or email.
func (s *Service) lastUsed(r *http.Request) string {
	c, err := r.Cookie(s.lastUsedCookie(r))
	if err != nil {
		return ""
	}
	switch m := c.Value; {
	case s.oauth[m] != nil, m == ProviderPassword && s.cfg.Password != nil, m == ProviderEmail && s.cfg.Email != nil:
		return m
	}
	return ""
}

// markLastUsed marks the page's method the browser last used.
func (s *Service) markLastUsed(r *http.Request, d *PageData) {
	d.LastUsed = s.lastUsed(r)
	for i := range d.OAuth {
		d.OAuth[i].LastUsed = d.OAuth[i].Name == d.LastUsed
	}
}
