package edge

import (
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// AuthTime is when the session's browser last signed in or
// re-authenticated: what max_age and {http.auth.user.auth_time} read.
func AuthTime(sess *session.Session) time.Time {
	return authTimeOf(sess)
}

func authTimeOf(sess *session.Session) time.Time {
	return sess.CreatedAt
}

// amrOf is the session's RFC 8176 method references.
func amrOf(sess *session.Session) []string {
	return nil
}
