package signin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// PathReauth is the step-up page: re-authenticating the signed-in session
// in place (package stepup serves it).
const PathReauth = "/auth/reauth"

// Reauth is a finished re-authentication flow at a provider: the session
// that began it, when it began, and who the provider says signed in.
type Reauth struct {
	Link
	// Began is when the flow began, to whole seconds (the provider's
	// auth_time must not be older).
	Began time.Time
	// RedirectTo is where the flow was to return (validated at its start).
	RedirectTo string
}

// Reauthenticator finishes the flows BeginReauth starts: it checks the
// sign-in, moves the session's authentication and answers the callback,
// reporting whether the session was re-authenticated. The step-up pages
// (package stepup) are one.
type Reauthenticator interface {
	FinishReauth(w http.ResponseWriter, r *http.Request, re Reauth) bool
}

// HandleReauth makes h finish the flows BeginReauth starts. It is set
// once, before the service serves.
func (s *Service) HandleReauth(h Reauthenticator) { s.reauther = h }

// BeginReauth starts the flow of the provider named name to re-authenticate
// sess (the provider is asked for a new sign-in: provider.Flow's
// Reauthenticate), and returns the provider URL to send the browser to.
// The callback hands it to the Reauthenticator (HandleReauth).
func (s *Service) BeginReauth(w http.ResponseWriter, r *http.Request, name string, sess *session.Session, redirectTo string) (string, error) {
	p := s.oauth[name]
	if p == nil || !p.info.StepUp {
		return "", fmt.Errorf("no provider named %q can re-authenticate", name)
	}
	return s.beginFlow(w, r, p, sealedFlow{
		RedirectTo: s.cfg.Redirects.Resolve(redirectTo),
		LinkUser:   sess.UserID, LinkSession: sess.ID,
		ReauthBegan: s.now().Unix(),
	})
}
