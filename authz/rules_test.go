package authz

import (
	"strings"
	"testing"
	"time"
)

func mustClaims(t testing.TB, raw string) *Claims {
	t.Helper()
	c, err := ParseClaims([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCriterion(t testing.TB, line string) Criterion {
	t.Helper()
	c, err := ParseCriterion(strings.Fields(line))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ruleOf(t testing.TB, allow, deny []string, maxAge time.Duration, mfa bool) *Rule {
	t.Helper()
	rc := RuleConfig{Paths: []string{"/p*"}, MaxAge: maxAge, MFA: mfa}
	for _, l := range allow {
		rc.Allow = append(rc.Allow, mustCriterion(t, l))
	}
	for _, l := range deny {
		rc.Deny = append(rc.Deny, mustCriterion(t, l))
	}
	return mustRules(t, rc).rules[0]
}

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func member(t testing.TB) Subject {
	return Subject{
		UserID: "u1", Provider: "github", Email: "Ada@Example.com", EmailVerified: true,
		AuthTime: now.Add(-time.Hour), AMR: []string{"fed"},
		Claims: mustClaims(t, `{"role":"member","orgs":["o1","o2"],"level":3,"beta":true}`),
	}
}

func TestDecide(t *testing.T) {
	admin := member(t)
	admin.Claims = mustClaims(t, `{"role":"admin"}`)
	unverified := member(t)
	unverified.EmailVerified = false
	noClaims := member(t)
	noClaims.Claims = nil
	recent := member(t)
	recent.AuthTime = now.Add(-time.Minute)
	mfa := member(t)
	mfa.AMR = []string{"pwd", "otp", "mfa"}

	cases := []struct {
		name   string
		allow  []string
		deny   []string
		maxAge time.Duration
		mfa    bool
		s      Subject
		want   Decision
	}{
		{"no criteria: any signed-in user", nil, nil, 0, false, member(t), Admit},
		{"claim string", []string{"claim role admin"}, nil, 0, false, admin, Admit},
		{"claim string, other value", []string{"claim role admin"}, nil, 0, false, member(t), Forbid},
		{"claim value among several", []string{"claim role owner admin"}, nil, 0, false, admin, Admit},
		{"claim array member", []string{"claim orgs o2"}, nil, 0, false, member(t), Admit},
		{"claim array, no member", []string{"claim orgs o3"}, nil, 0, false, member(t), Forbid},
		{"claim number by its JSON text", []string{"claim level 3"}, nil, 0, false, member(t), Admit},
		{"claim boolean", []string{"claim beta true"}, nil, 0, false, member(t), Admit},
		{"claim absent", []string{"claim team x"}, nil, 0, false, member(t), Forbid},
		{"any allow admits", []string{"claim role admin", "email_domain example.com"}, nil, 0, false, member(t), Admit},
		{"deny wins over allow", []string{"email_domain example.com"}, []string{"email ada@example.com"}, 0, false, member(t), Forbid},
		{"deny without allow", nil, []string{"provider github"}, 0, false, member(t), Forbid},
		{"deny that does not match", nil, []string{"user u2"}, 0, false, member(t), Admit},
		{"allow email needs it verified", []string{"email ada@example.com"}, nil, 0, false, unverified, Forbid},
		{"allow domain needs it verified", []string{"email_domain example.com"}, nil, 0, false, unverified, Forbid},
		{"deny email matches unverified too", nil, []string{"email ada@example.com"}, 0, false, unverified, Forbid},
		{"deny domain matches unverified too", nil, []string{"email_domain EXAMPLE.COM"}, 0, false, unverified, Forbid},
		{"email_verified", []string{"email_verified"}, nil, 0, false, member(t), Admit},
		{"email_verified, not verified", []string{"email_verified"}, nil, 0, false, unverified, Forbid},
		{"provider", []string{"provider google github"}, nil, 0, false, member(t), Admit},
		{"user", []string{"user u1"}, nil, 0, false, member(t), Admit},
		{"claims unavailable: allow on a claim", []string{"claim role admin"}, nil, 0, false, noClaims, ClaimsUnavailable},
		{"claims unavailable: another allow admits", []string{"claim role admin", "user u1"}, nil, 0, false, noClaims, Admit},
		{"claims unavailable: deny on a claim", nil, []string{"claim role banned"}, 0, false, noClaims, ClaimsUnavailable},
		{"claims unavailable: a deny without claims still wins", nil, []string{"claim role banned", "user u1"}, 0, false, noClaims, Forbid},
		{"claims unavailable: forbidden anyway", []string{"user u2"}, []string{"claim role banned"}, 0, false, noClaims, Forbid},
		{"max_age: too old", nil, nil, 10 * time.Minute, false, member(t), NeedReauthentication},
		{"max_age: recent", nil, nil, 10 * time.Minute, false, recent, Admit},
		{"max_age after allow: a stranger is forbidden first", []string{"user u2"}, nil, 10 * time.Minute, false, member(t), Forbid},
		{"mfa: none", nil, nil, 0, true, member(t), NeedSecondFactor},
		{"mfa: present", nil, nil, 0, true, mfa, Admit},
	}
	for _, c := range cases {
		r := ruleOf(t, c.allow, c.deny, c.maxAge, c.mfa)
		if got := r.Decide(&c.s, now); got != c.want {
			t.Errorf("%s: %s; want %s", c.name, got, c.want)
		}
	}
}

func TestParseCriterionNamesWhatIsWrong(t *testing.T) {
	for line, want := range map[string]string{
		"":                          "missing",
		"group admins":              `unknown criterion "group"`,
		"claim":                     "claim name",
		"claim role":                "at least one value",
		"claim iss x":               "reserved",
		"email":                     "at least one value",
		"email ada":                 "not an address",
		"email_domain @example.com": "not a domain",
		"email_verified yes":        "takes no value",
		"provider":                  "at least one value",
	} {
		_, err := ParseCriterion(strings.Fields(line))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCriterion(%q) = %v; want an error saying %q", line, err, want)
		}
	}
}

// BenchmarkProtectedRequest is what a protected request adds to today's
// path: find the rule of the request's path and decide it. It allocates
// nothing for a clean, lower-case path.
func BenchmarkProtectedRequest(b *testing.B) {
	rs := mustRules(b,
		RuleConfig{Paths: []string{"/loggedin*"}},
		RuleConfig{Paths: []string{"/loggedin/admin*"},
			Allow:  []Criterion{mustCriterion(b, "claim role admin"), mustCriterion(b, "email_domain example.com")},
			Deny:   []Criterion{mustCriterion(b, "email blocked@example.com")},
			MaxAge: time.Hour},
	)
	u := requestURL(b, "/loggedin/admin/users/")
	s := member(b)
	s.Claims = mustClaims(b, `{"role":"admin"}`)
	s.AuthTime = now.Add(-time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		r := rs.Match(u)
		if r == nil || r.Decide(&s, now) != Admit {
			b.Fatal("not admitted")
		}
	}
}

func TestProtectedRequestAllocatesNothing(t *testing.T) {
	rs := mustRules(t,
		RuleConfig{Paths: []string{"/loggedin*"}},
		RuleConfig{Paths: []string{"/loggedin/admin*"}, Allow: []Criterion{mustCriterion(t, "claim role admin")}, Deny: []Criterion{mustCriterion(t, "email_domain blocked.example")}},
	)
	s := member(t)
	s.Claims = mustClaims(t, `{"role":["admin","x"]}`)
	for _, target := range []string{"/loggedin/admin/users/", "/loggedin/x", "/open"} {
		u := requestURL(t, target)
		if n := testing.AllocsPerRun(100, func() {
			if r := rs.Match(u); r != nil {
				r.Decide(&s, now)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per request", target, n)
		}
	}
}
