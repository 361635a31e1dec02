package signin

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// serveGuest handles POST /auth/signin/anonymous: a new guest user, rate
// limited as sign-ups are, and a session for it.
func (s *Service) serveGuest(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	if !s.ReadForm(w, r) {
		return false
	}
	redirectTo := s.cfg.Redirects.Resolve(r.PostForm.Get("redirectTo"))
	again := func(status int, code string) {
		s.FailForm(w, r, code, s.signInBack("signin", redirectTo, ""), func() { s.Render(w, r, status, s.PageFor("signin", code, redirectTo)) })
	}
	// A browser that is signed in already keeps its user: a second click
	// must not make a second guest.
	if sess, err := s.cfg.Host.Session(r); err != nil {
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	} else if sess != nil {
		Redirect(w, r, redirectTo)
		return false
	}
	if s.Limited(w, r, LimitSignUp, LimitGlobalSignUp, again) {
		return false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := s.cfg.Users.CreateUser(ctx, session.NewUser{Anonymous: true, TTL: s.cfg.Anonymous.TTL})
	if err != nil {
		s.logger.Warn("guest sign-in could not create the user", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	}
	return s.finish(w, r, user, ProviderAnonymous, redirectTo)
}
