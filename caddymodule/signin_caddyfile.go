package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Caddyfile syntax of the sign-in options, inside convex_auth:
//
//	provider <type> [<name>] { ... }  # github, google, oidc, password, email, anonymous
//	                                  # or a third party's: each module's UnmarshalCaddyfile
//	email { ... }                     # mail for every provider: see unmarshalMail
//	after_sign_in    <path or url>
//	link_by_email
//	redirect_origins <origin...>
//	sign_in_template <file>
//	limits { ... }                    # see LimitsConfig
//
// Unknown and repeated options are errors.

// unmarshalSignInOption parses after_sign_in, link_by_email,
// redirect_origins and sign_in_template; the cursor is on the option.
func (h *Handler) unmarshalSignInOption(d *caddyfile.Dispenser) error {
	o := h.signInOptions()
	switch d.Val() {
	case "after_sign_in":
		return oneArg(d, &o.AfterSignIn)
	case "link_by_email":
		return flagArg(d, &o.LinkByEmail)
	case "redirect_origins":
		o.RedirectOrigins = d.RemainingArgs()
		if len(o.RedirectOrigins) == 0 {
			return d.Errf("redirect_origins needs at least one origin, e.g. redirect_origins https://docs.example.com")
		}
		return nil
	case "sign_in_template":
		return oneArg(d, &o.SignInTemplate)
	}
	return d.Errf("unknown subdirective %q in convex_auth", d.Val())
}
