package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Caddyfile syntax of the sign-in options, inside convex_auth:
//
//	provider github [<name>] {
//	    client_id     <id>
//	    client_secret <secret>           # e.g. {env.GITHUB_CLIENT_SECRET}
//	    scopes        <scope...>
//	    redirect_url  <url>
//	    auth_url      <url>
//	    token_url     <url>
//	    api_url       <url>
//	    label         <text>
//	}
//	provider google [<name>] {
//	    client_id, client_secret, scopes, redirect_url, label as above
//	    issuer        <url>
//	    auth_url, token_url, userinfo_url, jwks_url <url>
//	}
//	provider oidc <name> {
//	    issuer        <url>              # required
//	    the rest as for google
//	}
//	provider password [{
//	    min_length    <n>
//	    max_attempts  <n>
//	}]
//	provider email {
//	    smtp_host     <host>
//	    smtp_port     <port>
//	    smtp_tls      starttls|tls|none
//	    smtp_username <username>
//	    smtp_password <password>         # e.g. {env.SMTP_PASSWORD}
//	    from          <address>
//	    link_ttl      <duration>
//	    max_sends     <n>
//	}
//	provider anonymous [{            # "Continue as guest"
//	    guest_ttl     <duration>         # unused guests are removed; default 720h
//	}]
//	after_sign_in    <path or url>
//	link_by_email
//	redirect_origins <origin...>
//	sign_in_template <file>
//	limits {                          # see LimitsConfig
//	    sign_up|sign_in|email_send|oauth_start|global_sign_up|global_email_send <events>/<period>
//	}
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

// unmarshalProvider parses `provider <type> [<name>] { ... }`.
func (h *Handler) unmarshalProvider(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.Errf("provider needs a type and an optional name: provider github, provider oidc okta { ... }")
	}
	p := &ProviderConfig{Type: args[0]}
	if len(args) == 2 {
		p.Name = args[1]
	}
	switch p.Type {
	case providerGitHub, providerGoogle, providerOIDC, providerPassword, providerEmail, providerGuest:
	default:
		return d.Errf("provider type %q is unknown: use github, google, oidc, password, email or anonymous", p.Type)
	}
	for _, other := range h.providers() {
		if other.name() == p.name() {
			return d.Errf("provider %s is set more than once: give the second one a name, e.g. provider %s work { ... }", p.name(), p.Type)
		}
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("provider %s: %s is set more than once: keep one", p.name(), sub)
		}
		seen[sub] = true
		if err := p.unmarshalOption(d, sub); err != nil {
			return err
		}
	}
	if err := p.check(); err != nil {
		return d.Errf("provider %s: %w", p.name(), err)
	}
	o := h.signInOptions()
	o.Providers = append(o.Providers, p)
	return nil
}

func (p *ProviderConfig) unmarshalOption(d *caddyfile.Dispenser, sub string) error {
	oauth := p.Type == providerGitHub || p.Type == providerGoogle || p.Type == providerOIDC
	oidcOnly := p.Type == providerGoogle || p.Type == providerOIDC
	switch {
	case oauth && sub == "client_id":
		return oneArg(d, &p.ClientID)
	case oauth && sub == "client_secret":
		return oneArg(d, &p.ClientSecret)
	case oauth && sub == "scopes":
		p.Scopes = d.RemainingArgs()
		if len(p.Scopes) == 0 {
			return d.Errf("scopes needs at least one scope")
		}
		return nil
	case oauth && sub == "redirect_url":
		return oneArg(d, &p.RedirectURL)
	case oauth && sub == "auth_url":
		return oneArg(d, &p.AuthURL)
	case oauth && sub == "token_url":
		return oneArg(d, &p.TokenURL)
	case oauth && sub == "label":
		return oneArg(d, &p.Label)
	case p.Type == providerGitHub && sub == "api_url":
		return oneArg(d, &p.APIURL)
	case oidcOnly && sub == "issuer":
		return oneArg(d, &p.Issuer)
	case oidcOnly && sub == "userinfo_url":
		return oneArg(d, &p.UserinfoURL)
	case oidcOnly && sub == "jwks_url":
		return oneArg(d, &p.JWKSURL)
	case p.Type == providerPassword && sub == "min_length":
		return positiveIntArg(d, &p.MinLength)
	case p.Type == providerPassword && sub == "max_attempts":
		return positiveIntArg(d, &p.MaxAttempts)
	case p.Type == providerEmail && sub == "smtp_host":
		return oneArg(d, &p.SMTPHost)
	case p.Type == providerEmail && sub == "smtp_port":
		return positiveIntArg(d, &p.SMTPPort)
	case p.Type == providerEmail && sub == "smtp_tls":
		return oneArg(d, &p.SMTPTLS)
	case p.Type == providerEmail && sub == "smtp_username":
		return oneArg(d, &p.SMTPUsername)
	case p.Type == providerEmail && sub == "smtp_password":
		return oneArg(d, &p.SMTPPassword)
	case p.Type == providerEmail && sub == "from":
		return oneArg(d, &p.From)
	case p.Type == providerEmail && sub == "link_ttl":
		return durationArg(d, &p.LinkTTL)
	case p.Type == providerEmail && sub == "max_sends":
		return positiveIntArg(d, &p.MaxSends)
	case p.Type == providerGuest && sub == "guest_ttl":
		return durationArg(d, &p.GuestTTL)
	}
	return d.Errf("unknown option %q for provider %s", sub, p.Type)
}

func positiveIntArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	if err := intArg(d, dst); err != nil {
		return err
	}
	if *dst < 1 {
		return d.Errf("%s must be at least 1", name)
	}
	return nil
}
