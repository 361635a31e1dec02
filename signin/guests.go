package signin

import (
	"context"
	"net/http"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// guestSessionUser is the user ID of the request's session when it is a
// guest's session, else "".
func (s *Service) guestSessionUser(r *http.Request) string {
	sess, err := s.cfg.Host.Session(r)
	if err != nil || sess == nil || sess.Provider != ProviderAnonymous {
		return ""
	}
	return sess.UserID
}

// currentGuest is the guest the request is signed in as, if it is still
// a guest; nil otherwise (and when the store cannot tell: the sign-in then
// goes on as if there were no guest).
func (s *Service) currentGuest(ctx context.Context, r *http.Request) *session.User {
	id := s.guestSessionUser(r)
	if id == "" {
		return nil
	}
	u, err := s.cfg.Users.GetUser(ctx, id)
	if err != nil || !u.Anonymous {
		return nil
	}
	return u
}
