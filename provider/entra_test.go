package provider

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/idptest"
)

const (
	contoso  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	fabrikam = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)

func entraProvider(t *testing.T, s *idptest.Server, mod func(c *EntraConfig)) OAuth {
	t.Helper()
	c := EntraConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret}, Authority: s.URL}
	if mod != nil {
		mod(&c)
	}
	return mustNew(t, NewEntra, c)
}

// orgUser is a work account of tenant: an email, no email_verified.
func orgUser(tenant, oid, email string, more map[string]any) idptest.User {
	claims := map[string]any{"tid": tenant, "preferred_username": email}
	for k, v := range more {
		claims[k] = v
	}
	return idptest.User{Subject: oid, Email: email, Name: "Megan Bowen", Claims: claims}
}

// TestEntraSignIn: through common, work and personal accounts sign in; the
// account is oid within tid; a work account's email is unverified unless
// the token says otherwise (xms_edov, verified_primary_email).
func TestEntraSignIn(t *testing.T) {
	s := startIdP(t, idptest.Entra)
	p := entraProvider(t, s, nil)
	u, _ := p.AuthCodeURL(context.Background(), Flow{State: "s", Verifier: "v", Nonce: "n", RedirectURI: testCallback})
	if !strings.HasPrefix(u, s.URL+"/common/oauth2/v2.0/authorize?") {
		t.Fatalf("authorization URL %s; want the common endpoint", u)
	}
	if info := p.Info(); info.Name != "microsoft" || info.Label != "Microsoft" || info.Kind != KindMicrosoft || info.AdmissionTTL != 0 {
		t.Fatalf("Info() = %+v", info)
	}

	s.SignInAs(orgUser(contoso, "00000000-0000-0000-0000-000000000001", "megan@contoso.com", nil))
	id := mustSignIn(t, p)
	if id.Subject != contoso+"/00000000-0000-0000-0000-000000000001" || id.Email != "megan@contoso.com" || id.EmailVerified || id.Name != "Megan Bowen" {
		t.Fatalf("work account: %+v; want oid within tid, the email unverified", id)
	}
	for name, more := range map[string]map[string]any{
		"xms_edov":                      {"xms_edov": true},
		"verified_primary_email":        {"verified_primary_email": []any{"Megan@contoso.com"}},
		"verified_primary_email string": {"verified_primary_email": "megan@contoso.com"},
		"email_verified":                {"email_verified": true},
	} {
		s.SignInAs(orgUser(contoso, "00000000-0000-0000-0000-000000000001", "megan@contoso.com", more))
		if id := mustSignIn(t, p); !id.EmailVerified {
			t.Errorf("%s: the email is unverified; want verified", name)
		}
	}
	for name, more := range map[string]map[string]any{
		"xms_edov false":            {"xms_edov": false},
		"another verified email":    {"verified_primary_email": []any{"someone.else@contoso.com"}},
		"email_verified as a dummy": {"email_verified": "yes"},
	} {
		s.SignInAs(orgUser(contoso, "00000000-0000-0000-0000-000000000001", "megan@contoso.com", more))
		if id := mustSignIn(t, p); id.EmailVerified {
			t.Errorf("%s: the email is verified; want unverified", name)
		}
	}
	s.SignInAs(orgUser(EntraConsumersTenant, "00000000-0000-0000-0000-0000000000aa", "megan@outlook.com", nil))
	if id := mustSignIn(t, p); id.Subject != EntraConsumersTenant+"/00000000-0000-0000-0000-0000000000aa" {
		t.Fatalf("personal account: %+v", id)
	}
}

// TestEntraIssuer: the token's issuer must be the authority's v2.0 issuer
// of the token's own tenant, one the tenant option admits.
func TestEntraIssuer(t *testing.T) {
	s := startIdP(t, idptest.Entra)
	common := entraProvider(t, s, nil)
	user := orgUser(contoso, "00000000-0000-0000-0000-000000000001", "megan@contoso.com", nil)
	s.SignInAs(user)
	for name, iss := range map[string]string{
		"another tenant's issuer": s.URL + "/" + fabrikam + "/v2.0",
		"the template unfilled":   s.URL + "/{tenantid}/v2.0",
		"the common issuer":       s.URL + "/common/v2.0",
		"another cloud":           "https://login.microsoftonline.com/" + contoso + "/v2.0",
		"v1 issuer":               "https://sts.windows.net/" + contoso + "/",
	} {
		s.SetIssuer(iss)
		if _, err := signIn(t, common); err == nil || !strings.Contains(err.Error(), "issuer") {
			t.Errorf("%s: %v; want the issuer refused", name, err)
		}
	}
	s.SetIssuer("")
	s.SignInAs(orgUser("not-a-guid", "00000000-0000-0000-0000-000000000001", "megan@contoso.com", nil))
	if _, err := signIn(t, common); err == nil || !strings.Contains(err.Error(), "tid") {
		t.Errorf("no tenant ID: %v", err)
	}

	for name, c := range map[string]struct {
		tenant string
		user   idptest.User
		ok     bool
	}{
		"organizations, work account":     {EntraOrganizations, user, true},
		"organizations, personal account": {EntraOrganizations, orgUser(EntraConsumersTenant, "00000000-0000-0000-0000-0000000000aa", "megan@outlook.com", nil), false},
		"consumers, personal account":     {EntraConsumers, orgUser(EntraConsumersTenant, "00000000-0000-0000-0000-0000000000aa", "megan@outlook.com", nil), true},
		"consumers, work account":         {EntraConsumers, user, false},
		"one tenant, its account":         {contoso, user, true},
		"one tenant, another's account":   {fabrikam, user, false},
	} {
		p := entraProvider(t, s, func(ec *EntraConfig) { ec.Tenant = c.tenant })
		u, _ := p.AuthCodeURL(context.Background(), Flow{State: "s", RedirectURI: testCallback})
		if !strings.HasPrefix(u, s.URL+"/"+c.tenant+"/oauth2/v2.0/authorize?") {
			t.Errorf("%s: authorization URL %s", name, u)
		}
		s.SignInAs(c.user)
		_, err := signIn(t, p)
		if c.ok != (err == nil) {
			t.Errorf("%s: %v; want ok=%t", name, err, c.ok)
		}
	}
}

// TestEntraAdmission: allowed_tenants and allowed_groups refuse with
// their rule, and cap the session.
func TestEntraAdmission(t *testing.T) {
	s := startIdP(t, idptest.Entra)
	p := entraProvider(t, s, func(c *EntraConfig) {
		c.AllowedTenants = []string{contoso}
	})
	if info := p.Info(); info.AdmissionTTL != DefaultAdmissionTTL {
		t.Fatalf("AdmissionTTL %s; want the default", info.AdmissionTTL)
	}
	s.SignInAs(orgUser(contoso, "00000000-0000-0000-0000-000000000001", "megan@contoso.com", nil))
	mustSignIn(t, p)
	s.SignInAs(orgUser(fabrikam, "00000000-0000-0000-0000-000000000002", "adele@fabrikam.com", nil))
	_, err := signIn(t, p)
	refusedBy(t, err, RuleTenant)

	groups := entraProvider(t, s, func(c *EntraConfig) { c.AllowedGroups = []string{"b1a5-admins"} })
	s.SignInAs(orgUser(contoso, "00000000-0000-0000-0000-000000000001", "megan@contoso.com", map[string]any{"groups": []any{"b1a5-admins", "x"}}))
	mustSignIn(t, groups)
	s.SignInAs(orgUser(contoso, "00000000-0000-0000-0000-000000000001", "megan@contoso.com", map[string]any{"groups": []any{"x"}}))
	_, err = signIn(t, groups)
	refusedBy(t, err, RuleGroup)
	// Too many groups: Entra leaves the claim out; nobody is admitted.
	s.SignInAs(orgUser(contoso, "00000000-0000-0000-0000-000000000001", "megan@contoso.com", map[string]any{
		"_claim_names": map[string]any{"groups": "src1"}, "_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}))
	_, err = signIn(t, groups)
	refusedBy(t, err, RuleGroup)
}

func TestEntraConfig(t *testing.T) {
	base := Common{ClientID: "id", ClientSecret: "s"}
	for name, c := range map[string]struct {
		cfg  EntraConfig
		want string
	}{
		"defaults":          {EntraConfig{Common: base}, ""},
		"tenant guid":       {EntraConfig{Common: base, Tenant: contoso}, ""},
		"tenant domain":     {EntraConfig{Common: base, Tenant: "contoso.onmicrosoft.com"}, "is not common, organizations, consumers or a tenant ID"},
		"allowed not guid":  {EntraConfig{Common: base, AllowedTenants: []string{"contoso"}}, "allowed_tenants"},
		"bad authority":     {EntraConfig{Common: base, Authority: "login.microsoftonline.us"}, "authority"},
		"groups_claim only": {EntraConfig{Common: base, Groups: Groups{GroupsClaim: "roles"}}, "groups_claim needs allowed_groups"},
		"ttl without rule":  {EntraConfig{Common: Common{ClientID: "id", ClientSecret: "s", Admission: Admission{AdmissionTTL: Duration(3600e9)}}}, "admission_ttl needs an admission rule"},
	} {
		err := c.cfg.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
	// The national clouds: the authority replaces the host everywhere.
	p := mustNew(t, NewEntra, EntraConfig{Common: base, Authority: "https://login.microsoftonline.us/", Tenant: EntraOrganizations})
	u, _ := p.AuthCodeURL(context.Background(), Flow{State: "s", RedirectURI: testCallback})
	if parsed, _ := url.Parse(u); parsed.Host != "login.microsoftonline.us" || parsed.Path != "/organizations/oauth2/v2.0/authorize" {
		t.Fatalf("authorization URL %s", u)
	}
}
