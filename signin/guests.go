package signin

import (
	"context"
	"net/http"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// guestSessionUser is the user ID of the request's session when it is a
// guest's session, else "". A sign-in flow records it at its start: the
// only guest the flow may later sign up in place (adoptingGuest).
func (s *Service) guestSessionUser(r *http.Request) string {
	sess, err := s.cfg.Host.Session(r)
	if err != nil || sess == nil || sess.Provider != ProviderAnonymous {
		return ""
	}
	return sess.UserID
}

// adoptingGuest is the guest a finishing sign-in may sign up in place:
// the request's current guest, when the flow was started in this browser
// (startedHere) by that same guest (startedBy). A flow started elsewhere
// (a link or code asked for in another browser) signs the browser in as
// its account and leaves the guest as it was.
func (s *Service) adoptingGuest(ctx context.Context, r *http.Request, startedHere bool, startedBy string) *session.User {
	if !startedHere || startedBy == "" {
		return nil
	}
	g := s.currentGuest(ctx, r)
	if g == nil || g.ID != startedBy {
		return nil
	}
	return g
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
