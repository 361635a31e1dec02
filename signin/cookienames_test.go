package signin

import "github.com/convex-auth/caddy-convex-auth/internal/cookies"

// Cookie names as the tests look for them; the code makes them with
// cookies.Name.
const (
	linkCookieName       = cookies.Link
	flowCookieName       = cookies.Flow
	secureFlowCookieName = cookies.HostPrefix + cookies.Flow
)
