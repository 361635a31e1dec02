package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
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

// unmarshalProvider parses `provider <type> [<name>] { ... }` with the
// Caddyfile unmarshaler of the type's module.
func (h *Handler) unmarshalProvider(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("provider needs a type and an optional name: provider github, provider oidc okta { ... }")
	}
	typ := d.Val()
	id := ProvidersNamespace + "." + typ
	if _, err := caddy.GetModule(id); err != nil {
		return d.Errf("provider type %q is unknown: use %s", typ, providerTypes())
	}
	unm, err := caddyfile.UnmarshalModule(d, id)
	if err != nil {
		return err
	}
	mod, _ := unm.(caddy.Module)
	if name := providerName(mod); name != "" {
		others, err := h.providerModules()
		if err != nil {
			return d.Err(err.Error())
		}
		for _, other := range others {
			if providerName(other) == name {
				return d.Errf("provider %s is set more than once: give the second one a name, e.g. provider %s work { ... }", name, typ)
			}
		}
	}
	o := h.signInOptions()
	o.Providers = append(o.Providers, caddyconfig.JSONModuleObject(unm, "type", typ, nil))
	return nil
}
