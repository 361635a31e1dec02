package authz

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Criterion is one allow or deny line of a protect block.
type Criterion struct {
	// Kind is one of claim, email, email_domain, email_verified, provider
	// and user. Required.
	Kind string `json:"kind"`
	// Claim is the claim's name, with kind claim. Default: none; required
	// with claim.
	Claim string `json:"claim,omitempty"`
	// Values: the criterion matches when one of them does. Default: none;
	// at least one for every kind but email_verified, which takes none.
	Values []string `json:"values,omitempty"`
}

// Criterion kinds.
const (
	KindClaim         = "claim"          // claim <name> <value...>: the claim is one of the values, or an array holding one
	KindEmail         = "email"          // email <address...>: the session's email, case-insensitive
	KindEmailDomain   = "email_domain"   // email_domain <domain...>: the part after the email's @, case-insensitive
	KindEmailVerified = "email_verified" // email_verified: the session's email is verified
	KindProvider      = "provider"       // provider <name...>: the sign-in method the session started with
	KindUser          = "user"           // user <id...>: the user ID (the token's sub)
)

// Kinds lists the criterion kinds, as error messages name them.
var Kinds = []string{KindClaim, KindEmail, KindEmailDomain, KindEmailVerified, KindProvider, KindUser}

// ParseCriterion reads the words after allow or deny, e.g.
// ["claim", "role", "admin"].
func ParseCriterion(words []string) (Criterion, error) {
	if len(words) == 0 {
		return Criterion{}, fmt.Errorf("a criterion is missing: use one of %s", strings.Join(Kinds, ", "))
	}
	c := Criterion{Kind: words[0]}
	rest := words[1:]
	if c.Kind == KindClaim && len(rest) > 0 {
		c.Claim, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		c.Values = append([]string(nil), rest...)
	}
	if _, err := compileCriterion(c); err != nil {
		return Criterion{}, err
	}
	return c, nil
}

type criterionKind uint8

const (
	critClaim criterionKind = iota
	critEmail
	critEmailDomain
	critEmailVerified
	critProvider
	critUser
)

// criterion is a Criterion ready for evaluation.
type criterion struct {
	kind   criterionKind
	claim  string
	values []string
}

var criterionKinds = map[string]criterionKind{
	KindClaim: critClaim, KindEmail: critEmail, KindEmailDomain: critEmailDomain,
	KindEmailVerified: critEmailVerified, KindProvider: critProvider, KindUser: critUser,
}

func compileCriterion(c Criterion) (criterion, error) {
	kind, ok := criterionKinds[c.Kind]
	if !ok {
		return criterion{}, fmt.Errorf("unknown criterion %q: use one of %s", c.Kind, strings.Join(Kinds, ", "))
	}
	out := criterion{kind: kind, claim: c.Claim, values: c.Values}
	if kind == critClaim {
		if c.Claim == "" {
			return criterion{}, errors.New("claim needs a claim name and at least one value, e.g. claim role admin")
		}
		if err := checkClaimName(c.Claim); err != nil {
			return criterion{}, err
		}
	} else if c.Claim != "" {
		return criterion{}, fmt.Errorf("%s takes no claim name (%q): only claim does", c.Kind, c.Claim)
	}
	switch {
	case kind == critEmailVerified && len(c.Values) > 0:
		return criterion{}, fmt.Errorf("email_verified takes no value (got %q): it matches a session whose email is verified", c.Values)
	case kind != critEmailVerified && len(c.Values) == 0:
		return criterion{}, fmt.Errorf("%s needs at least one value", c.Kind)
	}
	for _, v := range c.Values {
		if v == "" {
			return criterion{}, fmt.Errorf("%s has an empty value", c.Kind)
		}
	}
	switch kind {
	case critEmail:
		for _, v := range c.Values {
			if at := strings.LastIndexByte(v, '@'); at <= 0 || at == len(v)-1 {
				return criterion{}, fmt.Errorf("email %q is not an address: use e.g. email ada@example.com", v)
			}
		}
	case critEmailDomain:
		for _, v := range c.Values {
			if strings.ContainsAny(v, "@ /") {
				return criterion{}, fmt.Errorf("email_domain %q is not a domain: use e.g. email_domain example.com", v)
			}
		}
	}
	return out, nil
}

// Subject is what a rule is decided on: the session and its claims.
type Subject struct {
	UserID        string
	Provider      string
	Email         string
	EmailVerified bool
	// AuthTime is the session's last sign-in or re-authentication.
	AuthTime time.Time
	// AMR are the session's RFC 8176 method references.
	AMR []string
	// Claims are the session's custom claims; nil when they could not be
	// had (the query failed and no result is recent enough).
	Claims *Claims
}

// match reports whether the criterion matches s. known is false when it
// needs claims that s lacks: then it neither matches nor fails to.
// allow and deny differ in one point: an allow on an address matches a
// verified address only, a deny any address.
func (c *criterion) match(s *Subject, allow bool) (matched, known bool) {
	switch c.kind {
	case critClaim:
		if s.Claims == nil {
			return false, false
		}
		return s.Claims.has(c.claim, c.values), true
	case critEmail:
		if s.Email == "" || (allow && !s.EmailVerified) {
			return false, true
		}
		for _, v := range c.values {
			if strings.EqualFold(s.Email, v) {
				return true, true
			}
		}
		return false, true
	case critEmailDomain:
		at := strings.LastIndexByte(s.Email, '@')
		if at < 0 || (allow && !s.EmailVerified) {
			return false, true
		}
		domain := s.Email[at+1:]
		for _, v := range c.values {
			if strings.EqualFold(domain, v) {
				return true, true
			}
		}
		return false, true
	case critEmailVerified:
		return s.Email != "" && s.EmailVerified, true
	case critProvider:
		return oneOf(s.Provider, c.values), true
	case critUser:
		return oneOf(s.UserID, c.values), true
	}
	return false, true
}

func oneOf(s string, values []string) bool {
	for _, v := range values {
		if s == v {
			return true
		}
	}
	return false
}
