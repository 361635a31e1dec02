package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/internal/smtptest"
)

// The account-takeover tests (takeover_test.go) run the built binary as a
// site with mail, passwords, email links, guests and an OpenID Provider on
// loopback, as an attacker would find it.

// siteOptions chooses what a takeover site offers.
type siteOptions struct {
	verifyEmail string // provider password's verify_email; "" leaves the default
	emailLinks  bool   // provider email (link mode)
	guests      bool   // provider anonymous
	idp         bool   // provider oidc idp, an OpenID Provider in this process
	redis       bool   // a redis-server of the test's own
	upstream    bool   // trust_upstream_sign_in, and an app whose POST /signin?user= signs that user in
	// globals, auth and site are extra lines of the global options, of
	// convex_auth and of the site block; limits, of its limits block.
	globals, auth, site, limits string
	// app, if set, is the site's upstream instead of `respond "app page"`.
	app http.Handler
}

// site is one takeover site.
type site struct {
	origin string
	issuer string
	sink   *smtptest.Server
	idp    *idp
	redis  *redistest.Server
	caddy  *caddyProcess
}

func startSite(t *testing.T, o siteOptions) *site {
	t.Helper()
	caddyBin(t)
	s := &site{sink: smtptest.Start(t, nil, "", "")}
	port := freePort(t)
	s.origin = fmt.Sprintf("http://127.0.0.1:%d", port)
	s.issuer = s.origin
	smtpHost, smtpPort, _ := net.SplitHostPort(s.sink.Addr)

	var auth strings.Builder
	fmt.Fprintf(&auth, "\t\tissuer %s\n", s.issuer)
	if o.redis {
		s.redis = redistest.StartServer(t)
		fmt.Fprintf(&auth, "\t\tredis %s\n", s.redis.URL())
	}
	fmt.Fprintf(&auth, "\t\temail {\n\t\t\tsmtp_host %s\n\t\t\tsmtp_port %s\n\t\t\tsmtp_tls none\n\t\t\tfrom login@example.com\n\t\t}\n", smtpHost, smtpPort)
	if o.verifyEmail != "" {
		fmt.Fprintf(&auth, "\t\tprovider password {\n\t\t\tverify_email %s\n\t\t}\n", o.verifyEmail)
	} else {
		auth.WriteString("\t\tprovider password\n")
	}
	if o.emailLinks {
		auth.WriteString("\t\tprovider email\n")
	}
	if o.guests {
		auth.WriteString("\t\tprovider anonymous\n")
	}
	if o.idp {
		s.idp = startIdP(t, s.origin+"/auth/callback/idp")
		fmt.Fprintf(&auth, "\t\tprovider oidc idp {\n\t\t\tissuer %s\n\t\t\tclient_id %s\n\t\t\tclient_secret %s\n\t\t}\n", s.idp.issuer, s.idp.clientID, s.idp.secret)
	}
	if o.upstream {
		auth.WriteString("\t\ttrust_upstream_sign_in\n")
	}
	// The tests send more mail and sign in more often from one address
	// than the per-client defaults allow; the per-address and per-account
	// limits stay as they are.
	auth.WriteString("\t\tlimits {\n\t\t\temail_send 1000/h\n\t\t\tsign_up 1000/h\n\t\t\tsign_in 1000/m\n" + o.limits + "\t\t}\n")
	auth.WriteString(o.auth)

	upstream := "respond \"app page\""
	extraSites := ""
	switch {
	case o.app != nil:
		app := httptest.NewServer(o.app)
		t.Cleanup(app.Close)
		upstream = "reverse_proxy " + strings.TrimPrefix(app.URL, "http://")
	case o.upstream:
		appPort := freePort(t)
		upstream = fmt.Sprintf("reverse_proxy 127.0.0.1:%d", appPort)
		extraSites = signInUpstreamByQuery(appPort)
	}
	config := fmt.Sprintf(`{
	admin off
	storage file_system %s
%s
}
%s {
%s
	convex_auth {
%s	}
	%s
}
%s`, t.TempDir(), o.globals, s.origin, o.site, auth.String(), upstream, extraSites)
	s.caddy = startCaddy(t, config, t.TempDir(), s.origin+"/.well-known/jwks.json")
	return s
}

// whoIs returns the user ID and email the browser is signed in as, or ""
// and "" when it is not signed in.
func (s *site) whoIs(t *testing.T, c *http.Client) (userID, email string) {
	t.Helper()
	resp, body := get(t, c, s.origin+"/auth/session")
	if resp.StatusCode == http.StatusUnauthorized {
		return "", ""
	}
	var v struct {
		User struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"user"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil || v.User.ID == "" {
		t.Fatalf("/auth/session: %d %s", resp.StatusCode, body)
	}
	return v.User.ID, v.User.Email
}

// mailLinkRE finds a mailed link to one of the gateway's link pages.
var mailLinkRE = regexp.MustCompile(`https?://[^\s"<>]+/auth/[a-z/]+\?token=[A-Za-z0-9_-]+`)

// mailed is one mail as a test reads it.
type mailed struct {
	to, text, link, code string
}

// mailTo waits for a mail to address, among those that arrived after the
// first `after` ones, whose text contains want.
func (s *site) mailTo(t *testing.T, after int, address, want string) mailed {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, m := range s.sink.Since(after) {
			if len(m.To) != 1 || m.To[0] != address {
				continue
			}
			text, err := textPart(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, want) {
				continue
			}
			out := mailed{to: address, text: text, link: mailLinkRE.FindString(text)}
			if c := mailCode.FindStringSubmatch(text); c != nil {
				out.code = c[1]
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s containing %q within 10s", address, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tokenOf is the token query parameter of a mailed link.
func tokenOf(t *testing.T, link string) string {
	t.Helper()
	tok := mustParse(t, link).Query().Get("token")
	if tok == "" {
		t.Fatalf("no token in %s", link)
	}
	return tok
}

// signUp signs email up with password in c and, under verify_email
// required, verifies it in c (the browser that asked, so no code).
func (s *site) signUp(t *testing.T, c *http.Client, email, password string, required bool) {
	t.Helper()
	before := s.sink.Count()
	resp, body := formPost(t, c, s.origin+"/auth/signin/password", url.Values{"intent": {"signup"}, "email": {email}, "password": {password}})
	if !required {
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-up of %s: %d %s", email, resp.StatusCode, body)
		}
		return
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-up of %s: %d %s", email, resp.StatusCode, body)
	}
	m := s.mailTo(t, before, email, "/auth/verify?token=")
	if resp, body := formPost(t, c, s.origin+"/auth/verify", url.Values{"token": {tokenOf(t, m.link)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("verifying %s in the browser that signed up: %d %s", email, resp.StatusCode, body)
	}
}

// signIn signs c in with a password and returns the status.
func (s *site) signIn(t *testing.T, c *http.Client, email, password string, headers ...map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.origin+"/auth/signin/password", strings.NewReader(url.Values{"email": {email}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for _, h := range headers {
		for k, v := range h {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// signInWithIdP signs c in at the IdP as user and completes the gateway's
// callback; it returns the callback's response.
func (s *site) signInWithIdP(t *testing.T, c *http.Client, user string) *http.Response {
	t.Helper()
	resp, _ := get(t, c, s.origin+"/auth/signin/idp")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("OIDC start: %d", resp.StatusCode)
	}
	callback := s.idp.login(t, c, location(t, resp), user)
	resp, _ = get(t, c, callback)
	return resp
}

// linkIdP asks, from c's account page, to link the IdP account of user
// and returns where the gateway finally sent the browser (the account
// page with a notice or an error), or the refusal's status and page.
func (s *site) linkIdP(t *testing.T, c *http.Client, user string, form url.Values) (int, string) {
	t.Helper()
	resp, body := formPost(t, c, s.origin+"/auth/link/idp", form)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), s.idp.issuer) {
		return resp.StatusCode, body
	}
	callback := s.idp.login(t, c, location(t, resp), user)
	resp, body = get(t, c, callback)
	if resp.StatusCode == http.StatusSeeOther {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, body
}

func location(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("status %d without a Location: %v", resp.StatusCode, err)
	}
	return loc.String()
}

// idp is an OpenID Provider on loopback: zitadel/oidc's example OP with
// the test's own users, driven through its login form.
type idp struct {
	issuer, clientID, secret string
	// stale makes the IdP answer as one that ignores prompt=login and
	// max_age: its id_token's auth_time is an hour old.
	stale *atomic.Bool
}

// idpStorage is the example OP's storage, with idp.stale's answers.
type idpStorage struct {
	*storage.Storage
	stale *atomic.Bool
}

func (s idpStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.Storage.AuthRequestByCode(ctx, code)
	if err != nil || !s.stale.Load() {
		return r, err
	}
	return staleAuthRequest{r}, nil
}

type staleAuthRequest struct{ op.AuthRequest }

func (staleAuthRequest) GetAuthTime() time.Time { return time.Now().Add(-time.Hour) }

// idpUser is an IdP account; its username is its key in idpUsers.
type idpUser struct {
	email    string
	verified bool
}

// idpUsers: the attacker's own account, one he made with the victim's
// address, which the IdP has not verified, and an owner's own.
var idpUsers = map[string]idpUser{
	"attacker":            {email: "attacker@evil.test", verified: true},
	"attacker-unverified": {email: "victim@example.com", verified: false},
	"owner":               {email: "owner@example.com", verified: true},
}

const idpPassword = "idp-password"

type idpUserStore struct{ users map[string]*storage.User }

func (s idpUserStore) GetUserByID(id string) *storage.User { return s.users[id] }
func (s idpUserStore) GetUserByUsername(name string) *storage.User {
	return s.users[name]
}
func (s idpUserStore) ExampleClientID() string { return storage.ServiceUserID }

func startIdP(t *testing.T, redirectURI string) *idp {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	p := &idp{issuer: "http://" + srv.Listener.Addr().String(), clientID: "gateway", secret: "gateway-secret", stale: new(atomic.Bool)}
	users := idpUserStore{users: map[string]*storage.User{}}
	for name, u := range idpUsers {
		users.users[name] = &storage.User{ID: name, Username: name, Password: idpPassword, FirstName: name, LastName: "Test",
			Email: u.email, EmailVerified: u.verified}
	}
	st := storage.NewStorageWithClients(users, map[string]*storage.Client{p.clientID: storage.WebClient(p.clientID, p.secret, redirectURI)})
	srv.Config.Handler = exampleop.SetupServer(p.issuer, idpStorage{st, p.stale}, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// login drives the IdP's login form as user and returns the gateway
// callback URL the IdP sends the browser back to, without opening it.
func (p *idp) login(t *testing.T, c *http.Client, authURL, user string) string {
	t.Helper()
	resp, _ := get(t, c, authURL)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("IdP authorize: %d", resp.StatusCode)
	}
	id := mustParse(t, location(t, resp)).Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("IdP authorize sent the browser to %s", location(t, resp))
	}
	resp, body := formPost(t, c, p.issuer+"/login/username", url.Values{"id": {id}, "username": {user}, "password": {idpPassword}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("IdP login: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, c, location(t, resp))
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("IdP callback: %d %s", resp.StatusCode, body)
	}
	return location(t, resp)
}
