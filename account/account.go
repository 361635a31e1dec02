// Package account owns the account page and its flows: the profile, the
// linked sign-in methods (link another provider, unlink one), the user's
// sessions (list, end one or all others), changing the password and
// deleting the account. It is built on a signin.Service, whose page
// shell, flows and password checks it uses; signin knows nothing of it
// beyond the Linker it finishes link flows with.
package account

import (
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

// The account page's forms post under accountPrefix; linking a provider
// starts at linkPrefix+<provider>.
const (
	accountPrefix = signin.PathAccount + "/"
	linkPrefix    = "/auth/link/"
	// pathDelete is the confirmation page that deletes the account.
	pathDelete = accountPrefix + "delete"
	// ReauthWindow is how recent the session's authentication must be to
	// link or unlink a method, change a second factor or delete the
	// account without typing the password.
	ReauthWindow = 5 * time.Minute
)

// Pages serve the account page and its forms for the users of one
// sign-in service.
type Pages struct {
	signIn *signin.Service
	// cfg is the service's configuration, with its defaults.
	cfg    signin.Config
	logger *zap.Logger
}

// New builds the account pages on svc, and has svc hand them the link
// flows they start.
func New(svc *signin.Service) *Pages {
	cfg := svc.Config()
	p := &Pages{signIn: svc, cfg: cfg, logger: cfg.Logger}
	svc.HandleLinks(p)
	return p
}
