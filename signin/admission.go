package signin

import (
	"strings"
	"time"

	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Admission at sign-in: after a provider proved who signed in and before
// any user, account or session exists, the provider's rules may refuse
// them. The rules a provider answers itself (organisations, groups,
// tenants) come back from Identity as a *provider.Refusal; the allowed
// email domains every provider takes are checked here. A refused user is
// sent to the sign-in page, which says why; nothing is created. A session
// a rule admitted lasts at most the provider's admission TTL, so the rules
// are checked again at the next sign-in.

// refusedPrefix starts the error code of a refusal: refused_<rule>.
const refusedPrefix = "refused_"

// refusals are the sentences the sign-in page shows by rule.
var refusals = map[string]string{
	provider.RuleEmailDomain: "This site admits only accounts whose verified email address is at one of its organisation's domains. Sign in with such an account.",
	provider.RuleOrg:         "This site admits only members of certain GitHub organisations or teams, and this account is not an active member of one.",
	provider.RuleOrgHidden:   "Your organisation membership could not be read: GitHub hides it until the organisation approves this app. Ask an organisation owner to approve it (Settings → Third-party access → OAuth app policy), or grant the organisation access when GitHub asks, then sign in again.",
	provider.RuleGroup:       "This site admits only members of certain groups, and this account is in none of them.",
	provider.RuleTenant:      "This site does not admit accounts of your Microsoft organisation (tenant).",
	provider.RuleWorkspace:   "This site admits only members of its Slack workspace. Sign in to that workspace and try again.",
}

// refusedCode is the error code of a refusal by rule.
func refusedCode(rule string) string {
	if _, ok := refusals[rule]; !ok {
		rule = provider.RuleGroup // a third party's rule: the closest words
	}
	return refusedPrefix + rule
}

// RefusalMessage is the sentence for an error code of an admission
// refusal (refused_<rule>), or "" for any other code. The account page
// shows it when a link is refused.
func RefusalMessage(code string) string {
	rule, ok := strings.CutPrefix(code, refusedPrefix)
	if !ok {
		return ""
	}
	return refusals[rule]
}

// admitEmail applies the provider's allowed email domains: only an email
// the provider verified, at one of them, is admitted.
func admitEmail(info provider.Info, id provider.Identity) error {
	if len(info.EmailDomains) == 0 {
		return nil
	}
	if !id.EmailVerified || !provider.EmailDomainAllowed(id.Email, info.EmailDomains) {
		return &provider.Refusal{Rule: provider.RuleEmailDomain, Detail: "no verified email at an allowed domain"}
	}
	return nil
}

// methodAdmission is the admission of a built-in method (password, email);
// none for the others.
func (s *Service) methodAdmission(method string) provider.Admission {
	switch {
	case method == ProviderPassword && s.cfg.Password != nil:
		return s.cfg.Password.Admission
	case method == ProviderEmail && s.cfg.Email != nil:
		return s.cfg.Email.Admission
	}
	return provider.Admission{}
}

// addressAdmitted reports whether a built-in method's rules admit an
// address typed into its form; nothing is sent to, or created for, one
// they do not.
func (s *Service) addressAdmitted(method, email string) bool {
	domains := s.methodAdmission(method).AllowedEmailDomains
	return len(domains) == 0 || provider.EmailDomainAllowed(email, domains)
}

// sessionCap is the admission TTL of a sign-in by method (0: none), and
// whether the user is admitted: a built-in method with allowed domains
// admits only a user whose email is verified at one of them (a user made
// before the rule, through a reset, is checked here too).
func (s *Service) sessionCap(method string, user *session.User) (time.Duration, bool) {
	if m := s.oauth[method]; m != nil {
		return m.info.AdmissionTTL, true
	}
	a := s.methodAdmission(method)
	if len(a.AllowedEmailDomains) == 0 {
		return 0, true
	}
	return provider.AdmissionTTLOf(a), user.Profile.EmailVerified && provider.EmailDomainAllowed(user.Profile.Email, a.AllowedEmailDomains)
}
