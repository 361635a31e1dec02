package provider

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/idptest"
)

// TestGitLabSignIn: a self-managed instance by base_url; the ID token has
// the email and email_verified, user info the name, avatar and groups.
func TestGitLabSignIn(t *testing.T) {
	s := startIdP(t, idptest.GitLab)
	p := mustNew(t, NewGitLab, GitLabConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret}, BaseURL: s.URL + "/"})
	s.SignInAs(idptest.User{Subject: "4321", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace", Picture: "https://gitlab.example.com/uploads/ada.png",
		Claims: map[string]any{"groups_direct": []any{"acme/platform"}}, Userinfo: map[string]any{"groups": []any{"acme", "acme/platform"}}})
	if id := mustSignIn(t, p); id != (Identity{Subject: "4321", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace", Picture: "https://gitlab.example.com/uploads/ada.png"}) {
		t.Fatalf("identity %+v", id)
	}
	s.SignInAs(idptest.User{Subject: "4322", Email: "eve@example.com", EmailVerified: false, Name: "Eve"})
	if id := mustSignIn(t, p); id.EmailVerified {
		t.Fatalf("an unconfirmed GitLab email read as verified: %+v", id)
	}

	groups := mustNew(t, NewGitLab, GitLabConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret}, BaseURL: s.URL,
		Groups: Groups{AllowedGroups: []string{"acme"}}})
	s.SignInAs(idptest.User{Subject: "4321", Email: "ada@example.com", EmailVerified: true, Name: "Ada",
		Claims: map[string]any{"groups_direct": []any{"acme/platform"}}, Userinfo: map[string]any{"groups": []any{"acme", "acme/platform"}}})
	mustSignIn(t, groups) // groups comes from user info: acme through its subgroup
	s.SignInAs(idptest.User{Subject: "4322", Email: "eve@example.com", EmailVerified: true, Name: "Eve", Userinfo: map[string]any{"groups": []any{"evil"}}})
	_, err := signIn(t, groups)
	refusedBy(t, err, RuleGroup)
	// groups_direct, from the ID token: only direct memberships count.
	direct := mustNew(t, NewGitLab, GitLabConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret}, BaseURL: s.URL,
		Groups: Groups{AllowedGroups: []string{"acme"}, GroupsClaim: "groups_direct"}})
	s.SignInAs(idptest.User{Subject: "4321", Email: "ada@example.com", EmailVerified: true, Name: "Ada",
		Claims: map[string]any{"groups_direct": []any{"acme/platform"}}, Userinfo: map[string]any{"groups": []any{"acme", "acme/platform"}}})
	_, err = signIn(t, direct)
	refusedBy(t, err, RuleGroup)
}

// TestDiscordSignIn: Discord's user, its global name and avatar; an email
// Discord did not verify stays unverified.
func TestDiscordSignIn(t *testing.T) {
	s := startIdP(t, idptest.Discord)
	p := mustNew(t, NewDiscord, DiscordConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret, AuthURL: s.AuthURL(), TokenURL: s.TokenURL()}, APIURL: s.URL + "/api"})
	u, _ := p.AuthCodeURL(context.Background(), Flow{State: "s", Verifier: "v", RedirectURI: testCallback})
	if q, _ := url.Parse(u); q.Query().Get("scope") != "identify email" {
		t.Fatalf("scopes %q; want identify email", q.Query().Get("scope"))
	}
	s.SignInAs(idptest.User{Subject: "80351110224678912", Email: "nelly@discord.com", EmailVerified: true, Name: "Nelly"})
	id := mustSignIn(t, p)
	if id.Subject != "80351110224678912" || id.Name != "Nelly" || !id.EmailVerified ||
		id.Picture != "https://cdn.discordapp.com/avatars/80351110224678912/a_1269e74af4df7417b13759eae50c83dc.png" {
		t.Fatalf("identity %+v", id)
	}
	s.SignInAs(idptest.User{Subject: "80351110224678913", Email: "eve@example.com", EmailVerified: false, Name: "Eve"})
	if id := mustSignIn(t, p); id.EmailVerified || id.Email != "eve@example.com" {
		t.Fatalf("an unverified Discord email: %+v; want it kept, unverified", id)
	}
	domains := mustNew(t, NewDiscord, DiscordConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret, AuthURL: s.AuthURL(), TokenURL: s.TokenURL(),
		Admission: Admission{AllowedEmailDomains: []string{"example.com"}}}, APIURL: s.URL + "/api"})
	if info := domains.Info(); len(info.EmailDomains) != 1 || info.AdmissionTTL != DefaultAdmissionTTL {
		t.Fatalf("Info() = %+v; want the domain and the default admission TTL", info)
	}
}

// TestSlackSignIn: Sign in with Slack by discovery; its picture claim; a
// failed exchange (200 with ok false) fails the sign-in; team admits one
// workspace.
func TestSlackSignIn(t *testing.T) {
	s := startIdP(t, idptest.Slack)
	p := mustNew(t, NewSlack, SlackConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret}, Issuer: s.URL})
	s.SignInAs(idptest.User{Subject: "U0R7MFMJM", Email: "bront@slack-corp.com", EmailVerified: true, Name: "brent",
		Claims: map[string]any{"https://slack.com/team_id": "T0RR", "https://slack.com/user_image_192": "https://secure.gravatar.com/avatar/bc.png"}})
	id := mustSignIn(t, p)
	if id != (Identity{Subject: "U0R7MFMJM", Email: "bront@slack-corp.com", EmailVerified: true, Name: "brent", Picture: "https://secure.gravatar.com/avatar/bc.png"}) {
		t.Fatalf("identity %+v", id)
	}
	// A code used twice: Slack answers 200 {"ok": false}.
	f := Flow{State: "s", Verifier: "v", Nonce: "n", RedirectURI: testCallback}
	params := authorize(t, p, f)
	if _, err := p.Identity(context.Background(), f, Callback{Code: params.Get("code")}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Identity(context.Background(), f, Callback{Code: params.Get("code")}); err == nil {
		t.Fatal("a code redeemed twice signed in")
	}

	team := mustNew(t, NewSlack, SlackConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret}, Issuer: s.URL, Team: "T0RR"})
	u, _ := team.AuthCodeURL(context.Background(), f)
	if q, _ := url.Parse(u); q.Query().Get("team") != "T0RR" {
		t.Fatalf("authorization URL %s; want team=T0RR", u)
	}
	mustSignIn(t, team)
	s.SignInAs(idptest.User{Subject: "U0EVE", Email: "eve@example.com", EmailVerified: true, Claims: map[string]any{"https://slack.com/team_id": "T0EVIL"}})
	_, err := signIn(t, team)
	refusedBy(t, err, RuleWorkspace)
}

// TestOAuth2SignIn: the claim mapping reads nested paths and numbers; an
// email counts as verified only through an email_verified mapping.
func TestOAuth2SignIn(t *testing.T) {
	s := startIdP(t, idptest.OAuth2)
	c := OAuth2Config{Common: Common{Name: "acme", ClientID: s.ClientID, ClientSecret: s.ClientSecret, AuthURL: s.AuthURL(), TokenURL: s.TokenURL(), Scopes: []string{"profile"}},
		UserinfoURL: s.URL + "/userinfo",
		Claims:      ClaimMapping{ID: "data.user.id", Email: "data.user.mail", Name: "data.user.display_name", Picture: "data.user.avatar.url"}}
	unmapped := mustNew(t, NewOAuth2, c)
	s.SignInAs(idptest.User{Subject: "90210", Email: "wile@acme.example", EmailVerified: true, Name: "Wile E.", Picture: "https://acme.example/wile.png"})
	id := mustSignIn(t, unmapped)
	if id != (Identity{Subject: "90210", Email: "wile@acme.example", Name: "Wile E.", Picture: "https://acme.example/wile.png"}) {
		t.Fatalf("identity %+v; want the mapped profile, the email unverified without a mapping", id)
	}
	c.Claims.EmailVerified = "data.user.mail_confirmed"
	mapped := mustNew(t, NewOAuth2, c)
	if id := mustSignIn(t, mapped); !id.EmailVerified {
		t.Fatalf("identity %+v; want the email verified through the mapping", id)
	}
	s.SignInAs(idptest.User{Subject: "90211", Email: "eve@acme.example", EmailVerified: "no"})
	if id := mustSignIn(t, mapped); id.EmailVerified {
		t.Fatalf("identity %+v; want a non-true email_verified read as unverified", id)
	}
	c.Claims.ID = "data.user.uuid"
	missing := mustNew(t, NewOAuth2, c)
	if _, err := signIn(t, missing); err == nil || !strings.Contains(err.Error(), `"data.user.uuid"`) {
		t.Fatalf("no ID at the mapped path: %v", err)
	}
	for name, cfg := range map[string]OAuth2Config{
		"no name":         {Common: Common{ClientID: "a", ClientSecret: "b", AuthURL: "https://x.example/a", TokenURL: "https://x.example/t"}, UserinfoURL: "https://x.example/u"},
		"no userinfo_url": {Common: Common{Name: "x", ClientID: "a", ClientSecret: "b", AuthURL: "https://x.example/a", TokenURL: "https://x.example/t"}},
		"bad path":        {Common: Common{Name: "x", ClientID: "a", ClientSecret: "b", AuthURL: "https://x.example/a", TokenURL: "https://x.example/t"}, UserinfoURL: "https://x.example/u", Claims: ClaimMapping{ID: "data..id"}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestGitHubAdmission: allowed_orgs and allowed_teams read the
// memberships from the API; a pending one does not admit; one GitHub hides
// (403, OAuth app restrictions) refuses as hidden.
func TestGitHubAdmission(t *testing.T) {
	s := startIdP(t, idptest.GitHub)
	p := mustNew(t, NewGitHub, GitHubConfig{Common: Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret, AuthURL: s.AuthURL(), TokenURL: s.TokenURL()},
		APIURL: s.URL, AllowedOrgs: []string{"acme"}, AllowedTeams: []string{"globex/platform"}})
	u, _ := p.AuthCodeURL(context.Background(), Flow{State: "s", Verifier: "v", RedirectURI: testCallback})
	if q, _ := url.Parse(u); q.Query().Get("scope") != "read:user user:email read:org" {
		t.Fatalf("scopes %q; want read:org added", q.Query().Get("scope"))
	}
	if p.Info().AdmissionTTL != DefaultAdmissionTTL {
		t.Fatal("no admission TTL with allowed_orgs")
	}
	user := func(orgs, teams map[string]string) idptest.User {
		return idptest.User{Subject: "583231", Email: "octo@example.com", EmailVerified: true, Name: "Octo Cat", Orgs: orgs, Teams: teams}
	}
	for name, c := range map[string]struct {
		user idptest.User
		rule string // "" admits
	}{
		"org member":             {user(map[string]string{"acme": "active"}, nil), ""},
		"team member":            {user(nil, map[string]string{"globex/platform": "active"}), ""},
		"pending invitation":     {user(map[string]string{"acme": "pending"}, nil), RuleOrg},
		"another org":            {user(map[string]string{"initech": "active"}, nil), RuleOrg},
		"hidden by restrictions": {user(map[string]string{"acme": "403"}, nil), RuleOrgHidden},
		"hidden org, team ok":    {user(map[string]string{"acme": "403"}, map[string]string{"globex/platform": "active"}), ""},
	} {
		s.SignInAs(c.user)
		_, err := signIn(t, p)
		if c.rule == "" && err != nil {
			t.Errorf("%s: %v; want admitted", name, err)
		} else if c.rule != "" {
			if r := AsRefusal(err); r == nil || r.Rule != c.rule {
				t.Errorf("%s: %v; want refused by %s", name, err, c.rule)
			}
		}
	}
	for name, cfg := range map[string]GitHubConfig{
		"bad org":  {Common: Common{ClientID: "a", ClientSecret: "b"}, AllowedOrgs: []string{"acme corp"}},
		"bad team": {Common: Common{ClientID: "a", ClientSecret: "b"}, AllowedTeams: []string{"platform"}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEmailDomainAllowed(t *testing.T) {
	patterns := []string{"example.com", "*.corp.example"}
	for email, want := range map[string]bool{
		"a@example.com": true, "a@EXAMPLE.com": true, "a@sub.example.com": false, "a@evilexample.com": false,
		"a@x.corp.example": true, "a@corp.example": false, "a@x.corp.example.evil": false, "example.com": false,
		"a@example.com@evil.com": false,
	} {
		if got := EmailDomainAllowed(email, patterns); got != want {
			t.Errorf("EmailDomainAllowed(%q) = %t; want %t", email, got, want)
		}
	}
	for _, bad := range []string{"", "com", ".example.com", "example..com", "ex ample.com", "@example.com", "*.", "*.com"} {
		if (Admission{AllowedEmailDomains: []string{bad}}).validate(false) == nil {
			t.Errorf("allowed_email_domains %q accepted", bad)
		}
	}
}
