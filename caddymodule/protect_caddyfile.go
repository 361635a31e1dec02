package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/authz"
)

// unmarshalProtect reads one protect line:
//
//	protect <path...>            # any signed-in user
//	protect <path...> {
//	    allow   <criterion> [<value...>]   # any allow admits; none: any signed-in user
//	    deny    <criterion> [<value...>]   # any deny refuses, whatever allow says
//	    max_age <duration>                 # step-up: a sign-in at most this old
//	    mfa                                # a second factor in this session
//	}
//
// Criteria: claim <name> <value...>, email <address...>, email_domain
// <domain...>, email_verified, provider <name...>, user <id...>. A line
// without a block gives one plain entry per path, as protect always did.
func (h *Handler) unmarshalProtect(d *caddyfile.Dispenser) error {
	paths := d.RemainingArgs()
	if len(paths) == 0 {
		return d.Errf("protect needs at least one path pattern, e.g. protect /loggedin*")
	}
	rule := ProtectRule{Paths: paths}
	seen := map[string]bool{}
	hasBlock := false
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		hasBlock = true
		sub := d.Val()
		if (sub == "max_age" || sub == "mfa") && seen[sub] {
			return d.Errf("protect %s: %s is set more than once: keep one", strings.Join(paths, " "), sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "allow", "deny":
			var c authz.Criterion
			if c, err = authz.ParseCriterion(d.RemainingArgs()); err != nil {
				return d.Errf("protect %s: %s: %v", strings.Join(paths, " "), sub, err)
			}
			if sub == "allow" {
				rule.Allow = append(rule.Allow, c)
			} else {
				rule.Deny = append(rule.Deny, c)
			}
		case "max_age":
			err = durationArg(d, &rule.MaxAge)
		case "mfa":
			if d.NextArg() {
				return d.Errf("protect %s: mfa takes no value", strings.Join(paths, " "))
			}
			rule.MFA = true
		default:
			return d.Errf("protect %s: unknown line %q: use allow, deny, max_age or mfa", strings.Join(paths, " "), sub)
		}
		if err != nil {
			return err
		}
	}
	if !hasBlock {
		for _, p := range paths {
			h.Protect = append(h.Protect, ProtectRule{Paths: []string{p}})
		}
		return nil
	}
	h.Protect = append(h.Protect, rule)
	return nil
}

// unmarshalClaims reads
//
//	claims {
//	    convex_url <url>              # the deployment, e.g. {env.CONVEX_URL}
//	    query      <module:function>  # e.g. auth:claims
//	    ttl        <duration>         # default 5m
//	    max_stale  <duration>         # default 1h
//	    timeout    <duration>         # default 2s
//	    context    <key...>           # e.g. org
//	}
func (h *Handler) unmarshalClaims(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("claims takes a block: claims { convex_url … query … }")
	}
	c := &ClaimsConfig{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("claims: %s is set more than once: keep one", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "convex_url":
			err = oneArg(d, &c.ConvexURL)
		case "query":
			err = oneArg(d, &c.Query)
		case "ttl":
			err = durationArg(d, &c.TTL)
		case "max_stale":
			err = durationArg(d, &c.MaxStale)
		case "timeout":
			err = durationArg(d, &c.Timeout)
		case "context":
			if c.Context = d.RemainingArgs(); len(c.Context) == 0 {
				err = d.Errf("claims: context needs at least one key, e.g. context org")
			}
		default:
			return d.Errf("claims: unknown line %q: use convex_url, query, ttl, max_stale, timeout or context", sub)
		}
		if err != nil {
			return err
		}
	}
	h.Claims = c
	return nil
}

// unmarshalTokenClaims reads token_claims <claim...>|none.
func (h *Handler) unmarshalTokenClaims(d *caddyfile.Dispenser) error {
	if h.TokenClaims = d.RemainingArgs(); len(h.TokenClaims) == 0 {
		return d.Errf("token_claims needs the profile claims tokens carry, e.g. token_claims email email_verified, or none")
	}
	return nil
}
