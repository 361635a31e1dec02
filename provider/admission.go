package provider

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultAdmissionTTL is how long a session admitted by an admission rule
// lasts at most before the user signs in, and is checked, again.
const DefaultAdmissionTTL = 24 * time.Hour

// Admission rules, as a Refusal names them.
const (
	// RuleEmailDomain: the verified email is at none of the allowed
	// domains (or there is no verified email).
	RuleEmailDomain = "email_domain"
	// RuleOrg: a member of none of the allowed organisations or teams.
	RuleOrg = "org"
	// RuleOrgHidden: the membership could not be read, because the
	// organisation has not approved the app or the user did not grant it
	// at consent.
	RuleOrgHidden = "org_hidden"
	// RuleGroup: in none of the allowed groups.
	RuleGroup = "group"
	// RuleTenant: of none of the allowed tenants.
	RuleTenant = "tenant"
	// RuleWorkspace: not a member of the allowed workspace.
	RuleWorkspace = "workspace"
)

// Refusal is the error Identity returns when the provider proved who
// signed in and an admission rule refuses them. The sign-in page says why
// by Rule; nothing is created.
type Refusal struct {
	// Rule is one of the Rule* names.
	Rule string
	// Detail says, for the log, what was refused (no secret).
	Detail string
}

func (r *Refusal) Error() string {
	return "admission refused (" + r.Rule + "): " + r.Detail
}

// AsRefusal returns the Refusal err holds, or nil.
func AsRefusal(err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	return nil
}

// Admission are the admission rules every OAuth 2.0 and OIDC provider
// takes; Common embeds them. The provider types add their own
// (organisations, groups, tenants).
type Admission struct {
	// AllowedEmailDomains admit only users whose email the provider
	// verified (password: by its verification link; email: by the link or
	// code itself), at one of these domains: "example.com" is that domain
	// exactly, "*.example.com" any of its subdomains. Default: none,
	// every user is admitted.
	AllowedEmailDomains []string `json:"allowed_email_domains,omitempty"`
	// AdmissionTTL is how long a session admitted by a rule (this
	// provider's allowed_email_domains, allowed_orgs, allowed_teams,
	// allowed_groups or allowed_tenants) lasts at most: then the user
	// signs in again and the rules are checked again. 1m or more.
	// Default: 24h.
	AdmissionTTL Duration `json:"admission_ttl,omitempty"`
}

// ValidateAdmission checks a's form, for a method that has no rules but
// a's (password, email).
func ValidateAdmission(a Admission) error { return a.validate(false) }

// AdmissionTTLOf is how long a session a's rules admit lasts at most; 0
// without rules.
func AdmissionTTLOf(a Admission) time.Duration { return a.ttl(false) }

// validate checks the rules' form; own says whether the type has rules
// of its own set.
func (a Admission) validate(own bool) error {
	for _, d := range a.AllowedEmailDomains {
		if !validDomainPattern(d) {
			return fmt.Errorf("allowed_email_domains: %q is not a domain: use example.com, or *.example.com for its subdomains", d)
		}
	}
	switch ttl := a.AdmissionTTL.D(); {
	case ttl == 0:
	case ttl < time.Minute:
		return fmt.Errorf("admission_ttl %s is too short: use 1m or more (default 24h)", ttl)
	case len(a.AllowedEmailDomains) == 0 && !own:
		return errors.New("admission_ttl needs an admission rule (allowed_email_domains, or the type's own): it caps the sessions a rule admits")
	}
	return nil
}

// ttl is the admission TTL when a rule is set (own says the type's own
// rules are), else 0.
func (a Admission) ttl(own bool) time.Duration {
	if len(a.AllowedEmailDomains) == 0 && !own {
		return 0
	}
	if a.AdmissionTTL != 0 {
		return a.AdmissionTTL.D()
	}
	return DefaultAdmissionTTL
}

func validDomainPattern(d string) bool {
	d = strings.TrimPrefix(d, "*.")
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || !strings.Contains(d, ".") {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(d, "..")
}

// EmailDomainAllowed reports whether email's domain matches one of the
// patterns (see Admission.AllowedEmailDomains), ignoring case.
func EmailDomainAllowed(email string, patterns []string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	domain := strings.ToLower(email[at+1:])
	return slices.ContainsFunc(patterns, func(p string) bool {
		p = strings.ToLower(p)
		if sub, ok := strings.CutPrefix(p, "*."); ok {
			return strings.HasSuffix(domain, "."+sub)
		}
		return domain == p
	})
}

// Groups is the allowed_groups rule of the providers whose tokens carry
// groups (OIDC, GitLab, Microsoft Entra ID).
type Groups struct {
	// AllowedGroups admit only users in one of these groups, as the
	// groups claim names them (GitLab: group paths; Entra ID: group
	// object IDs). Default: none, every user is admitted.
	AllowedGroups []string `json:"allowed_groups,omitempty"`
	// GroupsClaim is the claim of the ID token (or, when the token lacks
	// it, of user info) that lists the user's groups. Default: groups.
	GroupsClaim string `json:"groups_claim,omitempty"`
}

func (g Groups) validate() error {
	if g.GroupsClaim != "" && len(g.AllowedGroups) == 0 {
		return errors.New("groups_claim needs allowed_groups: it names where they are looked up")
	}
	if slices.Contains(g.AllowedGroups, "") {
		return errors.New("allowed_groups holds an empty group")
	}
	return nil
}

func (g Groups) claim() string {
	if g.GroupsClaim != "" {
		return g.GroupsClaim
	}
	return "groups"
}

// admit checks the rule against the claims; a claim missing or not a list
// of strings admits nobody.
func (g Groups) admit(claims map[string]any) error {
	if len(g.AllowedGroups) == 0 {
		return nil
	}
	for _, group := range stringList(claims[g.claim()]) {
		if slices.Contains(g.AllowedGroups, group) {
			return nil
		}
	}
	if _, ok := claims[g.claim()]; !ok {
		return &Refusal{Rule: RuleGroup, Detail: fmt.Sprintf("the token has no %q claim", g.claim())}
	}
	return &Refusal{Rule: RuleGroup, Detail: "in none of allowed_groups"}
}

// stringList reads a claim that is a list of strings, or one string.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return v
	}
	return nil
}
