// Package convexauth is the module root that xcaddy imports: it plugs the
// convex_auth handler, its Caddyfile directive and its CLI commands into Caddy.
package convexauth

import (
	// Registers http.handlers.convex_auth and the convex_auth directive.
	_ "github.com/convex-auth/caddy-convex-auth/caddymodule"
)
