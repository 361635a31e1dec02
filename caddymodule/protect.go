package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/convex-auth/caddy-convex-auth/authz"
)

// ProtectRule is one protect entry: path patterns that need a session,
// and who of the signed-in users may enter (docs/authorization.md). In
// JSON a bare string is an entry of one path and no criteria (the form
// protect had before rules, which still loads).
type ProtectRule struct {
	// Paths are path patterns in Caddy's path matcher syntax (e.g.
	// "/admin*"), matched as the path matcher matches them. When entries
	// overlap, the most specific path decides, as Caddy sorts handle
	// blocks. Required.
	Paths []string `json:"paths,omitempty"`

	// Allow: a signed-in user matching any of these may enter. Default:
	// none, any signed-in user may.
	Allow []authz.Criterion `json:"allow,omitempty"`

	// Deny: a signed-in user matching any of these may not, whatever
	// Allow says. Default: none.
	Deny []authz.Criterion `json:"deny,omitempty"`

	// MaxAge is how old the session's last sign-in or re-authentication
	// may be; an older one is sent to re-authenticate (step-up). Default:
	// 0, any age.
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	// MFA needs a second factor in the session. Default: false.
	MFA bool `json:"mfa,omitempty"`
}

// plain reports whether the entry is one path and nothing else: the
// string form.
func (p ProtectRule) plain() bool {
	return len(p.Paths) == 1 && len(p.Allow) == 0 && len(p.Deny) == 0 && p.MaxAge == 0 && !p.MFA
}

// MarshalJSON writes a plain entry as its path, so that configs without
// rules adapt as they always did.
func (p ProtectRule) MarshalJSON() ([]byte, error) {
	if p.plain() {
		return json.Marshal(p.Paths[0])
	}
	type rule ProtectRule
	return json.Marshal(rule(p))
}

// UnmarshalJSON reads either form, and refuses fields it does not know.
func (p *ProtectRule) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		var path string
		if err := json.Unmarshal(b, &path); err != nil {
			return err
		}
		*p = ProtectRule{Paths: []string{path}}
		return nil
	}
	type rule ProtectRule
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r rule
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("protect: %w", err)
	}
	*p = ProtectRule(r)
	return nil
}

// compileProtect checks and compiles the protect entries.
func compileProtect(entries []ProtectRule) (*authz.Rules, error) {
	configs := make([]authz.RuleConfig, len(entries))
	for i, e := range entries {
		configs[i] = authz.RuleConfig{Paths: e.Paths, Allow: e.Allow, Deny: e.Deny, MaxAge: time.Duration(e.MaxAge), MFA: e.MFA}
	}
	rules, err := authz.Compile(configs)
	if err != nil {
		return nil, fmt.Errorf("convex_auth: %w", err)
	}
	return rules, nil
}

// ClaimsConfig is the claims block: the app's Convex query whose result
// every token of a session carries (docs/authorization.md).
type ClaimsConfig struct {
	// ConvexURL is the Convex deployment's URL, e.g.
	// https://happy-animal-123.convex.cloud. Required.
	ConvexURL string `json:"convex_url,omitempty"`

	// Query is the public query's path, e.g. auth:claims. It is called as
	// the user with args {context: <the session's context or {}>}.
	// Required.
	Query string `json:"query,omitempty"`

	// TTL is how long a result is reused before the query is asked again.
	// Default: 5m.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// MaxStale is how long past TTL the last result is still used while
	// the query fails. Default: 1h.
	MaxStale caddy.Duration `json:"max_stale,omitempty"`

	// Timeout bounds one call. Default: 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Context lists the keys a session's context may hold (POST
	// /auth/session/context), e.g. ["org"]. Default: none.
	Context []string `json:"context,omitempty"`
}

func (c *ClaimsConfig) authz() authz.ClaimsConfig {
	return authz.ClaimsConfig{
		Query:       authz.QueryConfig{ConvexURL: c.ConvexURL, Query: c.Query, Timeout: time.Duration(c.Timeout)},
		TTL:         time.Duration(c.TTL),
		MaxStale:    time.Duration(c.MaxStale),
		ContextKeys: c.Context,
	}
}

// checkAuthz checks protect, claims and token_claims together: a rule
// that reads claims needs a claims block.
func (h *Handler) checkAuthz() error {
	rules, err := compileProtect(h.Protect)
	if err != nil {
		return err
	}
	if h.Claims != nil {
		if err := h.Claims.authz().Check(); err != nil {
			return fmt.Errorf("convex_auth: %w", err)
		}
	}
	if rules.NeedsClaims() && h.Claims == nil {
		readsClaims := func(c authz.Criterion) bool { return c.Kind == authz.KindClaim }
		var paths []string
		for _, e := range h.Protect {
			if slices.ContainsFunc(e.Allow, readsClaims) || slices.ContainsFunc(e.Deny, readsClaims) {
				paths = append(paths, e.Paths...)
			}
		}
		return fmt.Errorf("convex_auth: protect %s reads claims (claim …), but there is no claims block: add claims { convex_url … query … }", strings.Join(paths, " "))
	}
	return nil
}
