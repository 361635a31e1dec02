package account

import (
	"net/http"
	"strings"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

// Handle serves /auth/account and its forms, /auth/link/<provider> and the
// change-password form, and reports whether r was one of them. Without a
// session store (Config.Sessions) the account paths are left to the app.
func (p *Pages) Handle(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	switch {
	case path == signin.PathChangePassword && p.cfg.Password != nil:
		p.serveChangePassword(w, r)
	case path == signin.PathAccount || strings.HasPrefix(path, accountPrefix):
		if p.cfg.Sessions == nil {
			return false
		}
		p.serveAccount(w, r, strings.TrimPrefix(path, signin.PathAccount))
	case strings.HasPrefix(path, linkPrefix):
		p.serveLinkStart(w, r, path[len(linkPrefix):])
	default:
		return false
	}
	return true
}

// serveAccount serves /auth/account (sub "") and its forms.
func (p *Pages) serveAccount(w http.ResponseWriter, r *http.Request, sub string) {
	if p.serveFactors(w, r, signin.PathAccount+sub) {
		return
	}
	switch sub {
	case "":
		p.servePage(w, r)
	case "/unlink":
		p.serveUnlink(w, r)
	case "/sessions":
		p.serveEndSession(w, r)
	case "/name":
		p.serveName(w, r)
	case "/delete":
		p.serveDelete(w, r)
	case "/reauth":
		p.serveReauth(w, r)
	default:
		p.fail(w, r, http.StatusNotFound, "not_found")
	}
}
