package authz

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// RuleConfig is one protect entry: the paths it covers and who may enter.
type RuleConfig struct {
	// Paths are path patterns in Caddy's path matcher syntax. Each acts as
	// a block of its own, sorted by specificity with the others.
	Paths []string
	// Allow: any matching admits; none listed admits any signed-in user.
	Allow []Criterion
	// Deny: any matching refuses, whatever Allow says.
	Deny []Criterion
	// MaxAge, when set, is how old the session's last sign-in or
	// re-authentication may be (step-up).
	MaxAge time.Duration
	// MFA needs a second factor in the session (RFC 8176 amr "mfa").
	MFA bool
}

// Rule is one compiled protected path.
type Rule struct {
	path   PathPattern
	allow  []criterion
	deny   []criterion
	maxAge time.Duration
	mfa    bool
	claims bool // a criterion reads claims
}

// Path is the rule's path pattern as configured (the metrics label).
func (r *Rule) Path() string { return r.path.raw }

// MaxAge is the rule's step-up window; zero when it has none.
func (r *Rule) MaxAge() time.Duration { return r.maxAge }

// NeedsClaims reports whether a criterion of the rule reads claims.
func (r *Rule) NeedsClaims() bool { return r.claims }

// Decision is what a rule makes of a signed-in subject.
type Decision uint8

// Decisions, in the order Decide reaches them.
const (
	// Admit: the request goes on.
	Admit Decision = iota
	// Forbid: a deny matched, or allows were listed and none matched (403).
	Forbid
	// ClaimsUnavailable: the decision needs claims the session lacks
	// because the query failed (503).
	ClaimsUnavailable
	// NeedSecondFactor: the rule has mfa and the session no second factor.
	NeedSecondFactor
	// NeedReauthentication: the session's sign-in is older than MaxAge.
	NeedReauthentication
)

var decisionNames = [...]string{"admit", "forbid", "claims_unavailable", "need_second_factor", "need_reauthentication"}

func (d Decision) String() string {
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return fmt.Sprintf("decision(%d)", d)
}

// Decide applies the rule to s at now. Deny is read first and wins; then
// allow; the requirements (mfa, then max_age) apply to whoever passes.
// A criterion that needs claims s lacks decides nothing: when the outcome
// hangs on it, the answer is ClaimsUnavailable, never Admit.
func (r *Rule) Decide(s *Subject, now time.Time) Decision {
	denyUnknown := false
	for i := range r.deny {
		matched, known := r.deny[i].match(s, false)
		if matched {
			return Forbid
		}
		denyUnknown = denyUnknown || !known
	}
	admitted, allowUnknown := len(r.allow) == 0, false
	for i := range r.allow {
		matched, known := r.allow[i].match(s, true)
		if matched {
			admitted = true
			break
		}
		allowUnknown = allowUnknown || !known
	}
	switch {
	case !admitted && !allowUnknown:
		return Forbid
	case !admitted || denyUnknown:
		return ClaimsUnavailable
	case r.mfa && !HasSecondFactor(s.AMR):
		return NeedSecondFactor
	case r.maxAge > 0 && (s.AuthTime.IsZero() || now.Sub(s.AuthTime) > r.maxAge):
		return NeedReauthentication
	}
	return Admit
}

// HasSecondFactor reports whether amr records a multi-factor
// authentication: RFC 8176's "mfa", which the second factor adds beside
// the methods it completed.
func HasSecondFactor(amr []string) bool {
	for _, m := range amr {
		if m == "mfa" {
			return true
		}
	}
	return false
}

// Rules are the protected paths of one gateway, most specific first.
type Rules struct {
	rules  []*Rule
	claims bool
}

// Compile checks and compiles the protect entries. Each error names the
// path and the offending line.
func Compile(configs []RuleConfig) (*Rules, error) {
	rs := &Rules{}
	seen := map[string]string{}
	for _, c := range configs {
		if len(c.Paths) == 0 {
			return nil, errors.New("protect needs at least one path pattern, e.g. protect /loggedin*")
		}
		if c.MaxAge < 0 {
			return nil, fmt.Errorf("protect %s: max_age %s is negative", strings.Join(c.Paths, " "), c.MaxAge)
		}
		allow, err := compileCriteria(c.Allow)
		if err != nil {
			return nil, fmt.Errorf("protect %s: allow: %w", strings.Join(c.Paths, " "), err)
		}
		deny, err := compileCriteria(c.Deny)
		if err != nil {
			return nil, fmt.Errorf("protect %s: deny: %w", strings.Join(c.Paths, " "), err)
		}
		claims := slices.ContainsFunc(allow, readsClaims) || slices.ContainsFunc(deny, readsClaims)
		for _, p := range c.Paths {
			pp, err := CompilePath(p)
			if err != nil {
				return nil, fmt.Errorf("protect: %w", err)
			}
			if first, dup := seen[pp.pat]; dup {
				return nil, fmt.Errorf("protect %s: the path is protected twice (also as %s): merge the two into one block", p, first)
			}
			seen[pp.pat] = p
			rs.rules = append(rs.rules, &Rule{path: pp, allow: allow, deny: deny, maxAge: c.MaxAge, mfa: c.MFA, claims: claims})
		}
		rs.claims = rs.claims || claims
	}
	sort.SliceStable(rs.rules, func(i, j int) bool { return moreSpecific(rs.rules[i].path.raw, rs.rules[j].path.raw) })
	return rs, nil
}

func readsClaims(c criterion) bool { return c.kind == critClaim }

func compileCriteria(cs []Criterion) ([]criterion, error) {
	var out []criterion
	for _, c := range cs {
		cc, err := compileCriterion(c)
		if err != nil {
			return nil, err
		}
		out = append(out, cc)
	}
	return out, nil
}

// moreSpecific orders two single-path blocks as Caddy's Caddyfile adapter
// orders handle blocks (httpcaddyfile's sortRoutes): without a trailing
// *, the longer path first; a path before the same path with a trailing *;
// equal lengths lexically.
func moreSpecific(a, b string) bool {
	at, bt := strings.TrimSuffix(a, "*"), strings.TrimSuffix(b, "*")
	if at == bt {
		return len(a) < len(b)
	}
	if len(at) == len(bt) {
		return at < bt
	}
	return len(at) > len(bt)
}

// Match returns the most specific rule whose path matches u, or nil when u
// is not protected.
func (rs *Rules) Match(u *url.URL) *Rule {
	if rs == nil || len(rs.rules) == 0 {
		return nil
	}
	rp := newRequestPath(u)
	for _, r := range rs.rules {
		if r.path.matches(&rp) {
			return r
		}
	}
	return nil
}

// NeedsClaims reports whether any rule reads claims.
func (rs *Rules) NeedsClaims() bool { return rs != nil && rs.claims }

// Paths returns the protected path patterns in the order they are tried.
func (rs *Rules) Paths() []string {
	if rs == nil {
		return nil
	}
	out := make([]string, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = r.path.raw
	}
	return out
}
