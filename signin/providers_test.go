package signin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/idptest"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// The sign-in of each provider type against idptest's providers: a whole
// sign-in, the admission rules refusing (and creating nothing), an
// unverified email never joining an existing user, Apple's form post.

// rules are the admission options a test gives a provider.
type rules struct {
	domains []string
	orgs    []string
	groups  []string
	tenants []string
	team    string
}

// idpProvider builds the provider of s's kind, named by its kind, with r.
func idpProvider(t *testing.T, s *idptest.Server, r rules) provider.OAuth {
	t.Helper()
	common := provider.Common{ClientID: s.ClientID, ClientSecret: s.ClientSecret, Admission: provider.Admission{AllowedEmailDomains: r.domains}}
	var p provider.OAuth
	var err error
	switch s.Kind {
	case idptest.Apple:
		k, kerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if kerr != nil {
			t.Fatal(kerr)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		s.AppleTeamID, s.AppleKeyID, s.AppleKey = "TEAM123456", "KEY1234567", &k.PublicKey
		common.ClientSecret, common.AuthURL, common.TokenURL = "", s.AuthURL(), s.TokenURL()
		p, err = provider.NewApple(provider.AppleConfig{Common: common, TeamID: s.AppleTeamID, KeyID: s.AppleKeyID,
			PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), JWKSURL: s.JWKSURL()})
	case idptest.Entra:
		p, err = provider.NewEntra(provider.EntraConfig{Common: common, Authority: s.URL, AllowedTenants: r.tenants, Groups: provider.Groups{AllowedGroups: r.groups}})
	case idptest.GitLab:
		p, err = provider.NewGitLab(provider.GitLabConfig{Common: common, BaseURL: s.URL, Groups: provider.Groups{AllowedGroups: r.groups}})
	case idptest.Discord:
		common.AuthURL, common.TokenURL = s.AuthURL(), s.TokenURL()
		p, err = provider.NewDiscord(provider.DiscordConfig{Common: common, APIURL: s.URL + "/api"})
	case idptest.Slack:
		p, err = provider.NewSlack(provider.SlackConfig{Common: common, Issuer: s.URL, Team: r.team})
	case idptest.GitHub:
		common.AuthURL, common.TokenURL = s.AuthURL(), s.TokenURL()
		p, err = provider.NewGitHub(provider.GitHubConfig{Common: common, APIURL: s.URL, AllowedOrgs: r.orgs})
	case idptest.OAuth2:
		common.Name, common.AuthURL, common.TokenURL = "oauth2", s.AuthURL(), s.TokenURL()
		p, err = provider.NewOAuth2(provider.OAuth2Config{Common: common, UserinfoURL: s.URL + "/userinfo",
			Claims: provider.ClaimMapping{ID: "data.user.id", Email: "data.user.mail", EmailVerified: "data.user.mail_confirmed", Name: "data.user.display_name"}})
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// idpEnv is a site with one provider of kind, on the store mk makes.
type idpEnv struct {
	*env
	idp   *idptest.Server
	name  string
	users *writeCounter
}

func newIdPEnv(t *testing.T, mk storeMaker, kind string, r rules, linkByEmail bool) *idpEnv {
	t.Helper()
	ie := &idpEnv{idp: idptest.Start(kind, "client-"+kind, "secret-"+kind)}
	t.Cleanup(ie.idp.Close)
	p := idpProvider(t, ie.idp, r)
	ie.name = p.Info().Name
	ie.env = newEnvOn(t, mk, func(c *Config, origin string) {
		c.OAuth = []provider.OAuth{p}
		c.LinkByEmail = linkByEmail
		ie.users = &writeCounter{UserStore: c.Users}
		c.Users = ie.users
		c.Limiter = ie.users.UserStore.(session.Limiter)
	})
	return ie
}

var formInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// signIn runs the flow in b as a browser would and returns the sign-in's
// last answer: the redirect after the callback. A form post (Apple) is
// sent from the provider's site, so without the site's SameSite=Lax
// cookies, and its answer followed in b.
func (ie *idpEnv) signIn(b *browser, redirectTo string) *http.Response {
	ie.t.Helper()
	resp, body := b.Get(ie.idpAuthorize(b, redirectTo))
	switch resp.StatusCode {
	case http.StatusFound: // a redirect to the callback
		resp, _ = b.Get(location(ie.t, resp))
		return resp
	case http.StatusOK: // the form-post page
		form := url.Values{}
		for _, m := range formInput.FindAllStringSubmatch(body, -1) {
			form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		relay := ie.crossSitePost(b, ie.origin+"/auth/callback/"+ie.name, form)
		if relay.StatusCode != http.StatusSeeOther || location(ie.t, relay) != ie.origin+"/auth/callback/"+ie.name {
			ie.t.Fatalf("form post: %d %s; want 303 to the callback", relay.StatusCode, relay.Header.Get("Location"))
		}
		resp, _ = b.Get(location(ie.t, relay))
		return resp
	}
	ie.t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	return nil
}

// idpAuthorize starts the flow and returns the provider's URL.
func (ie *idpEnv) idpAuthorize(b *browser, redirectTo string) string {
	ie.t.Helper()
	u := ie.origin + "/auth/signin/" + ie.name
	if redirectTo != "" {
		u += "?redirectTo=" + url.QueryEscape(redirectTo)
	}
	resp, body := b.Get(u)
	if resp.StatusCode != http.StatusFound {
		ie.t.Fatalf("start: %d %s", resp.StatusCode, body)
	}
	return location(ie.t, resp)
}

// crossSitePost posts form from another site: a browser sends none of the
// site's SameSite=Lax cookies with it; the cookies it sets land in b.
func (ie *idpEnv) crossSitePost(b *browser, target string, form url.Values) *http.Response {
	ie.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ie.idp.URL)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	c := &http.Client{CheckRedirect: b.C.CheckRedirect, Timeout: b.C.Timeout}
	resp, err := c.Do(req)
	if err != nil {
		ie.t.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(target)
	b.C.Jar.SetCookies(u, resp.Cookies())
	return resp
}

// mustSignIn signs b in and checks it lands on redirectTo, signed in.
func (ie *idpEnv) mustSignIn(b *browser, redirectTo string) whoami {
	ie.t.Helper()
	resp := ie.signIn(b, redirectTo)
	if resp.StatusCode != http.StatusSeeOther || location(ie.t, resp) != ie.origin+redirectTo {
		ie.t.Fatalf("sign-in: %d %s; want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), redirectTo)
	}
	w, ok := b.Whoami(ie.origin)
	if !ok {
		ie.t.Fatal("not signed in after the flow")
	}
	return w
}

// writeCounter counts the writes a sign-in makes to the user store.
type writeCounter struct {
	session.UserStore
	writes atomic.Int32
}

func (c *writeCounter) CreateUser(ctx context.Context, n session.NewUser) (*session.User, error) {
	c.writes.Add(1)
	return c.UserStore.CreateUser(ctx, n)
}

func (c *writeCounter) UpdateUser(ctx context.Context, u *session.User) error {
	c.writes.Add(1)
	return c.UserStore.UpdateUser(ctx, u)
}

func (c *writeCounter) CreateAccount(ctx context.Context, a session.Account) error {
	c.writes.Add(1)
	return c.UserStore.CreateAccount(ctx, a)
}

// TestProviderTypesSignIn: each type signs a user in end to end: the user
// and its account in the store, the session, the profile.
func TestProviderTypesSignIn(t *testing.T) {
	for kind, c := range map[string]struct {
		user    idptest.User
		subject string
		name    string
	}{
		idptest.Apple:   {idptest.User{Subject: "001234.abcd", Email: "ada@example.com", EmailVerified: "true", FirstName: "Ada", LastName: "Lovelace"}, "001234.abcd", "Ada Lovelace"},
		idptest.Entra:   {idptest.User{Subject: "00000000-0000-0000-0000-000000000001", Email: "ada@example.com", Name: "Ada Lovelace", Claims: map[string]any{"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "xms_edov": true}}, "72f988bf-86f1-41af-91ab-2d7cd011db47/00000000-0000-0000-0000-000000000001", "Ada Lovelace"},
		idptest.GitLab:  {idptest.User{Subject: "4321", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}, "4321", "Ada Lovelace"},
		idptest.Discord: {idptest.User{Subject: "80351110224678912", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}, "80351110224678912", "Ada Lovelace"},
		idptest.Slack:   {idptest.User{Subject: "U0R7MFMJM", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}, "U0R7MFMJM", "Ada Lovelace"},
		idptest.OAuth2:  {idptest.User{Subject: "90210", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}, "90210", "Ada Lovelace"},
	} {
		t.Run(kind, func(t *testing.T) {
			ie := newIdPEnv(t, nil, kind, rules{}, false)
			ie.idp.SignInAs(c.user)
			b := newBrowser(t)
			w := ie.mustSignIn(b, "/loggedin")
			if w.Provider != ie.name || w.Email != "ada@example.com" || !w.EmailVerified || w.Name != c.name {
				t.Fatalf("session %+v; want the provider's verified email and name %q", w, c.name)
			}
			acct, err := ie.store.GetAccount(context.Background(), ie.name, c.subject)
			if err != nil || acct.UserID != w.UserID {
				t.Fatalf("account (%s, %s) = %+v, %v; want user %s", ie.name, c.subject, acct, err, w.UserID)
			}
			// Again, in another browser: the same user.
			if again := ie.mustSignIn(newBrowser(t), "/loggedin"); again.UserID != w.UserID {
				t.Fatalf("second sign-in: user %s; want %s", again.UserID, w.UserID)
			}
		})
	}
}

// TestAdmissionRefusals: each rule refuses with its page and creates
// nothing: no user, no account, no session.
func TestAdmissionRefusals(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		for name, c := range map[string]struct {
			kind  string
			rules rules
			user  idptest.User
			rule  string
		}{
			"email domain": {idptest.Discord, rules{domains: []string{"example.com"}}, idptest.User{Subject: "1", Email: "eve@evil.example", EmailVerified: true, Name: "Eve"}, provider.RuleEmailDomain},
			"email domain, unverified": {idptest.Discord, rules{domains: []string{"example.com"}},
				idptest.User{Subject: "2", Email: "eve@example.com", EmailVerified: false, Name: "Eve"}, provider.RuleEmailDomain},
			"github org": {idptest.GitHub, rules{orgs: []string{"acme"}}, idptest.User{Subject: "3", Email: "eve@example.com", EmailVerified: true, Name: "Eve", Orgs: map[string]string{"acme": "pending"}}, provider.RuleOrg},
			"github org hidden": {idptest.GitHub, rules{orgs: []string{"acme"}},
				idptest.User{Subject: "4", Email: "eve@example.com", EmailVerified: true, Name: "Eve", Orgs: map[string]string{"acme": "403"}}, provider.RuleOrgHidden},
			"gitlab group": {idptest.GitLab, rules{groups: []string{"acme"}}, idptest.User{Subject: "5", Email: "eve@example.com", EmailVerified: true, Name: "Eve", Userinfo: map[string]any{"groups": []any{"evil"}}}, provider.RuleGroup},
			"entra tenant": {idptest.Entra, rules{tenants: []string{"72f988bf-86f1-41af-91ab-2d7cd011db47"}},
				idptest.User{Subject: "00000000-0000-0000-0000-000000000006", Email: "eve@fabrikam.com", Name: "Eve", Claims: map[string]any{"tid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}}, provider.RuleTenant},
			"slack workspace":    {idptest.Slack, rules{team: "T0RR"}, idptest.User{Subject: "U7", Email: "eve@example.com", EmailVerified: true, Name: "Eve", Claims: map[string]any{"https://slack.com/team_id": "T0EVIL"}}, provider.RuleWorkspace},
			"apple email domain": {idptest.Apple, rules{domains: []string{"example.com"}}, idptest.User{Subject: "8", Email: "x@privaterelay.appleid.com", EmailVerified: "true", FirstName: "Eve"}, provider.RuleEmailDomain},
		} {
			t.Run(name, func(t *testing.T) {
				ie := newIdPEnv(t, mk, c.kind, c.rules, true)
				ie.idp.SignInAs(c.user)
				b := newBrowser(t)
				resp := ie.signIn(b, "/loggedin")
				loc, _ := url.Parse(location(t, resp))
				if resp.StatusCode != http.StatusSeeOther || loc.Path != PathSignIn || loc.Query().Get("error") != "refused_"+c.rule {
					t.Fatalf("refused sign-in: %d %s; want the sign-in page with error=refused_%s", resp.StatusCode, loc, c.rule)
				}
				_, page := b.Get(loc.String())
				if !strings.Contains(page, html.EscapeString(refusals[c.rule])) {
					t.Fatalf("the page does not say why: want %q", refusals[c.rule])
				}
				if _, ok := b.Whoami(ie.origin); ok {
					t.Fatal("signed in after a refusal")
				}
				if n := ie.users.writes.Load(); n != 0 {
					t.Fatalf("a refused sign-in made %d user store writes; want none", n)
				}
				if _, err := ie.store.GetAccount(context.Background(), ie.name, c.user.Subject); !errors.Is(err, session.ErrNotFound) {
					t.Fatalf("account after a refusal: %v", err)
				}
				if c.user.Email != "" {
					if _, err := ie.store.UserByEmail(context.Background(), c.user.Email); !errors.Is(err, session.ErrNotFound) {
						t.Fatalf("user after a refusal: %v", err)
					}
				}
			})
		}
	})
}

// TestAdmissionTTL: a session a rule admitted ends at the admission TTL,
// and the next sign-in checks the rule again.
func TestAdmissionTTL(t *testing.T) {
	ie := newIdPEnv(t, nil, idptest.GitHub, rules{orgs: []string{"acme"}}, false)
	member := idptest.User{Subject: "583231", Email: "octo@example.com", EmailVerified: true, Name: "Octo", Orgs: map[string]string{"acme": "active"}}
	ie.idp.SignInAs(member)
	b := newBrowser(t)
	w := ie.mustSignIn(b, "/loggedin")
	list, err := ie.store.List(context.Background(), w.UserID)
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions %v, %v", list, err)
	}
	if got := list[0].ExpiresAt.Sub(list[0].CreatedAt); got != provider.DefaultAdmissionTTL {
		t.Fatalf("the admitted session lasts %s; want the admission TTL %s", got, provider.DefaultAdmissionTTL)
	}
	ie.clock.Advance(provider.DefaultAdmissionTTL - time.Minute)
	if _, ok := b.Whoami(ie.origin); !ok {
		t.Fatal("signed out before the admission TTL")
	}
	ie.clock.Advance(time.Minute)
	if _, ok := b.Whoami(ie.origin); ok {
		t.Fatal("still signed in at the admission TTL")
	}
	// Removed from the org meanwhile: the next sign-in is refused.
	member.Orgs = map[string]string{}
	ie.idp.SignInAs(member)
	if loc := location(t, ie.signIn(b, "/loggedin")); !strings.Contains(loc, "error=refused_org") {
		t.Fatalf("sign-in after leaving the org led to %s; want refused", loc)
	}
}

// TestUnverifiedEmailNeverLinks: an existing user holds an email,
// verified; a provider account with that email, unverified by the
// provider, gets a user of its own (the nOAuth takeover: an Entra tenant
// may set any email on its users).
func TestUnverifiedEmailNeverLinks(t *testing.T) {
	for kind, user := range map[string]idptest.User{
		idptest.Entra:   {Subject: "00000000-0000-0000-0000-00000000000e", Email: "victim@example.com", Name: "Mallory", Claims: map[string]any{"tid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}},
		idptest.Apple:   {Subject: "000666.mallory", Email: "victim@example.com", EmailVerified: "false"},
		idptest.GitLab:  {Subject: "666", Email: "victim@example.com", EmailVerified: false, Name: "Mallory"},
		idptest.Discord: {Subject: "666", Email: "victim@example.com", EmailVerified: false, Name: "Mallory"},
		idptest.Slack:   {Subject: "U666", Email: "victim@example.com", EmailVerified: false, Name: "Mallory"},
		idptest.OAuth2:  {Subject: "666", Email: "victim@example.com", Name: "Mallory"},
	} {
		t.Run(kind, func(t *testing.T) {
			ie := newIdPEnv(t, nil, kind, rules{}, true)
			victim, err := ie.store.CreateUser(context.Background(), session.NewUser{Profile: session.Profile{Email: "victim@example.com", EmailVerified: true}})
			if err != nil {
				t.Fatal(err)
			}
			ie.idp.SignInAs(user)
			w := ie.mustSignIn(newBrowser(t), "/loggedin")
			if w.UserID == victim.ID {
				t.Fatal("an unverified email joined the existing user's account")
			}
			if w.EmailVerified {
				t.Fatalf("session %+v: the provider's unverified email reads as verified", w)
			}
			if accts, _ := ie.store.AccountsOf(context.Background(), victim.ID); len(accts) != 0 {
				t.Fatalf("the victim gained accounts %v", accts)
			}
		})
	}
}

// TestFormPostRelay: Apple's answer posted cross-site is moved to a GET
// with a sealed cookie; the flow is checked there. A forged post, a
// relay cookie in another browser and an answer posted for another
// provider sign nobody in.
func TestFormPostRelay(t *testing.T) {
	ie := newIdPEnv(t, nil, idptest.Apple, rules{}, false)
	ie.idp.SignInAs(idptest.User{Subject: "001", Email: "ada@example.com", EmailVerified: true})
	b := newBrowser(t)
	auth := ie.idpAuthorize(b, "/loggedin")
	_, page := b.Get(auth)
	form := url.Values{}
	for _, m := range formInput.FindAllStringSubmatch(page, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	callback := ie.origin + "/auth/callback/" + ie.name

	// Forged: the attacker's own code and state posted to the victim.
	forged := url.Values{"code": {form.Get("code")}, "state": {randomToken()}}
	victim := newBrowser(t)
	relay := ie.crossSitePost(victim, callback, forged)
	resp, _ := victim.Get(location(t, relay))
	if loc := location(t, resp); !strings.Contains(loc, "error=state") {
		t.Fatalf("forged post led to %s; want error=state", loc)
	}
	// The relay cookie is sealed, short-lived and for the callback only.
	relay = ie.crossSitePost(b, callback, form)
	var rc *http.Cookie
	for _, c := range relay.Cookies() {
		if c.Name == formPostCookieName {
			rc = c
		}
	}
	if rc == nil || rc.Path != "/auth/callback/apple" || !rc.HttpOnly || rc.SameSite != http.SameSiteLaxMode || rc.MaxAge > 60 ||
		strings.Contains(rc.Value, form.Get("code")) || strings.Contains(rc.Value, form.Get("state")) {
		t.Fatalf("relay cookie %+v; want HttpOnly, Lax, the callback's path, a minute, sealed", rc)
	}
	// In another browser (no flow cookie) it signs nobody in.
	thief := newBrowser(t)
	site, _ := url.Parse(ie.origin)
	thief.C.Jar.SetCookies(site, []*http.Cookie{{Name: formPostCookieName, Value: rc.Value, Path: "/auth/callback/apple"}})
	resp, _ = thief.Get(callback)
	if loc := location(t, resp); !strings.Contains(loc, "error=state") {
		t.Fatalf("relay cookie in another browser led to %s; want error=state", loc)
	}
	// Expired: the relay waits a minute at most.
	ie.clock.Advance(formPostTTL)
	resp, _ = b.Get(callback)
	if loc := location(t, resp); !strings.Contains(loc, "error=state") {
		t.Fatalf("an expired relay led to %s; want error=state", loc)
	}
	// A provider that does not answer by form post refuses a POST.
	gl := newIdPEnv(t, nil, idptest.GitLab, rules{}, false)
	if resp := gl.crossSitePost(newBrowser(t), gl.origin+"/auth/callback/"+gl.name, form); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST to a query callback: %d; want 405", resp.StatusCode)
	}
}

// TestLastUsedHint: after a sign-in the browser keeps the method's name
// in an HttpOnly cookie, and the sign-in page marks that method.
func TestLastUsedHint(t *testing.T) {
	ie := newIdPEnv(t, nil, idptest.GitLab, rules{}, false)
	ie.idp.SignInAs(idptest.User{Subject: "4321", Email: "ada@example.com", EmailVerified: true, Name: "Ada"})
	b := newBrowser(t)
	_, page := b.Get(ie.origin + PathSignIn)
	if strings.Contains(page, "Last used") {
		t.Fatal("a new browser's page marks a method as last used")
	}
	resp := ie.signIn(b, "/loggedin")
	var hint *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookies.LastUsed {
			hint = c
		}
	}
	if hint == nil || hint.Value != "gitlab" || !hint.HttpOnly || hint.SameSite != http.SameSiteLaxMode || hint.MaxAge < 300*24*3600 {
		t.Fatalf("last-used cookie %+v; want gitlab, HttpOnly, Lax, long-lived", hint)
	}
	_, page = b.Get(ie.origin + PathSignIn + "?reauth=1")
	if !regexp.MustCompile(`data-provider="gitlab"[^>]*data-last-used`).MatchString(page) || !strings.Contains(page, "Last used") {
		t.Fatal("the sign-in page does not mark GitLab as last used")
	}
	// A name that is no method here marks nothing.
	other := newBrowser(t)
	site, _ := url.Parse(ie.origin)
	other.C.Jar.SetCookies(site, []*http.Cookie{{Name: cookies.LastUsed, Value: "<script>", Path: "/"}})
	if _, page := other.Get(ie.origin + PathSignIn); strings.Contains(page, "Last used") || strings.Contains(page, "<script>") {
		t.Fatal("an unknown method's name marked the page")
	}
}

// TestBuiltinEmailDomains: allowed_email_domains on password and email:
// an address at another domain comes back to the sign-in page with the
// refusal (a script's post: 403), and no mail, no user; one at an allowed domain signs in, its session capped at the
// admission TTL. Password sign-ups there are verified first.
func TestBuiltinEmailDomains(t *testing.T) {
	domains := provider.Admission{AllowedEmailDomains: []string{"example.com"}, AdmissionTTL: provider.Duration(8 * time.Hour)}
	e, rcv := newMailEnv(t, nil, "", func(c *Config) {
		c.Password.Admission = domains
		c.Email.Admission = domains
	})
	users := &writeCounter{UserStore: e.store}
	e.svc.cfg.Users = users
	if e.svc.cfg.Password.VerifyEmail != VerifyRequired {
		t.Fatalf("verify_email %q with allowed_email_domains; want required", e.svc.cfg.Password.VerifyEmail)
	}
	b := newBrowser(t)
	for name, send := range map[string]func() (*http.Response, string){
		"email link": func() (*http.Response, string) { return requestLink(t, e, b, "eve@evil.example", "") },
		"sign-up":    func() (*http.Response, string) { return e.signUp(b, "eve@evil.example", adaPass) },
		"sign-in":    func() (*http.Response, string) { return e.signIn(b, "eve@sub.example.com", adaPass) },
	} {
		resp, page := b.Back(send())
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, html.EscapeString(refusals[provider.RuleEmailDomain])) {
			t.Fatalf("%s at another domain: %d; want the sign-in page with the refusal's words", name, resp.StatusCode)
		}
	}
	if resp, page := b.Fetch(e.origin+"/auth/signin/password", passwordForm("signin", "eve@sub.example.com", adaPass, "")); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(page, html.EscapeString(refusals[provider.RuleEmailDomain])) {
		t.Fatalf("a script's sign-in at another domain: %d; want 403 and the refusal's words", resp.StatusCode)
	}
	if rcv.Count() != 0 || users.writes.Load() != 0 {
		t.Fatalf("refusals sent %d mails and made %d user writes; want none", rcv.Count(), users.writes.Load())
	}
	requestLink(t, e, b, "ada@example.com", "")
	if resp, _ := useLink(t, b, mailLink(t, rcv)); !succeeded(resp) {
		t.Fatalf("a link at the allowed domain: %d", resp.StatusCode)
	}
	w, ok := b.Whoami(e.origin)
	if !ok {
		t.Fatal("not signed in by the link")
	}
	list, _ := e.store.List(context.Background(), w.UserID)
	if len(list) != 1 || list[0].ExpiresAt.Sub(list[0].CreatedAt) != 8*time.Hour {
		t.Fatalf("sessions %+v; want one capped at admission_ttl 8h", list)
	}
	if _, err := New(Config{Origin: "https://app.example.com", Users: e.store, Sessions: e.store, Host: e.host,
		Password: &PasswordConfig{VerifyEmail: VerifyOptional, Admission: domains}, Mail: e.svc.cfg.Mail}); err == nil || !strings.Contains(err.Error(), "verify_email required") {
		t.Fatalf("allowed_email_domains under verify_email optional: %v; want refused", err)
	}
}
