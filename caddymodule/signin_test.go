package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

func TestUnmarshalSignInCaddyfile(t *testing.T) {
	input := `convex_auth {
		issuer https://app.example.com
		provider github {
			client_id gh-id
			client_secret {env.GITHUB_SECRET}
			api_url https://ghe.example.com/api/v3
		}
		provider github work {
			client_id gh2
			client_secret s2
			label "GitHub (work)"
		}
		provider google {
			client_id g-id
			client_secret g-secret
		}
		provider oidc okta {
			issuer https://example.okta.com
			client_id o-id
			client_secret o-secret
			scopes openid email
		}
		provider password {
			min_length 12
			max_attempts 5
		}
		provider email {
			smtp_host smtp.example.com
			smtp_port 587
			smtp_tls starttls
			smtp_username mailer
			smtp_password {env.SMTP_PASSWORD}
			from "Example <login@example.com>"
			link_ttl 10m
			max_sends 3
		}
		after_sign_in /welcome
		link_by_email
		redirect_origins https://docs.example.com http://localhost:3000
		sign_in_template /etc/caddy/signin.html
	}`
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	if err := h.checkSignIn(); err != nil {
		t.Fatal(err)
	}
	var names []string
	mods := providersOf(t, &h)
	for i, p := range mods {
		names = append(names, mods[i].CaddyModule().ID.Name()+":"+providerName(p))
	}
	if got := strings.Join(names, " "); got != "github:github github:work google:google oidc:okta password:password email:email" {
		t.Fatalf("providers %s", got)
	}
	gh, okta, pw, mail := mods[0].(*GitHubProvider), mods[3].(*OIDCProvider), mods[4].(*PasswordProvider), mods[5].(*EmailProvider)
	checks := []struct {
		name      string
		got, want any
	}{
		{"github secret", gh.ClientSecret, "{env.GITHUB_SECRET}"},
		{"github api", gh.APIURL, "https://ghe.example.com/api/v3"},
		{"label", mods[1].(*GitHubProvider).Label, "GitHub (work)"},
		{"okta issuer", okta.Issuer, "https://example.okta.com"},
		{"okta scopes", strings.Join(okta.Scopes, " "), "openid email"},
		{"min_length", pw.MinLength, 12},
		{"max_attempts", pw.MaxAttempts, 5},
		{"smtp_host", mail.SMTPHost, "smtp.example.com"},
		{"smtp_port", mail.SMTPPort, 587},
		{"smtp_password", mail.SMTPPassword, "{env.SMTP_PASSWORD}"},
		{"from", mail.From, "Example <login@example.com>"},
		{"link_ttl", time.Duration(mail.LinkTTL), 10 * time.Minute},
		{"max_sends", mail.MaxSends, 3},
		{"after_sign_in", h.SignIn.AfterSignIn, "/welcome"},
		{"link_by_email", h.SignIn.LinkByEmail, true},
		{"redirect_origins", strings.Join(h.SignIn.RedirectOrigins, " "), "https://docs.example.com http://localhost:3000"},
		{"sign_in_template", h.SignIn.SignInTemplate, "/etc/caddy/signin.html"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestUnmarshalSignInCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		"unknown type":          `provider facebook { client_id a }`,
		"no type":               `provider`,
		"too many args":         `provider oidc a b`,
		"oidc without name":     `provider oidc { issuer https://x.example client_id a client_secret b }`,
		"oidc without issuer":   "provider oidc okta {\nclient_id a\nclient_secret b\n}",
		"no client secret":      "provider github {\nclient_id a\n}",
		"duplicate provider":    "provider password\nprovider password",
		"duplicate option":      "provider github {\nclient_id a\nclient_id b\nclient_secret c\n}",
		"unknown option":        "provider github {\nclient_id a\nclient_secret c\nissuer https://x.example\n}",
		"password option":       "provider password {\nclient_id a\n}",
		"bad min_length":        "provider password {\nmin_length 0\n}",
		"email without from":    "provider email {\nsmtp_host h\n}",
		"email bad tls":         "provider email {\nsmtp_host h\nfrom a@example.com\nsmtp_tls ssl\n}",
		"email bad link_ttl":    "provider email {\nsmtp_host h\nfrom a@example.com\nlink_ttl 30s\n}",
		"bad url":               "provider github {\nclient_id a\nclient_secret c\nauth_url github.com/x\n}",
		"repeated after":        "provider password\nafter_sign_in /a\nafter_sign_in /b",
		"redirect_origins none": "provider password\nredirect_origins",
		"link_by_email arg":     "provider password\nlink_by_email yes",
		"oauth2 unknown claim":  "provider oauth2 acme {\nauth_url https://a.example/a\ntoken_url https://a.example/t\nuserinfo_url https://a.example/u\nclient_id a\nclient_secret b\nclaims {\nuid id\n}\n}",
		"oauth2 claims value":   "provider oauth2 acme {\nauth_url https://a.example/a\ntoken_url https://a.example/t\nuserinfo_url https://a.example/u\nclient_id a\nclient_secret b\nclaims id\n}",
		"oauth2 without name":   "provider oauth2 {\nauth_url https://a.example/a\ntoken_url https://a.example/t\nuserinfo_url https://a.example/u\nclient_id a\nclient_secret b\n}",
		"apple secret":          "provider apple {\nclient_id a\nclient_secret b\nteam_id T\nkey_id K\nprivate_key_file /k.p8\n}",
		"slack bad team":        "provider slack {\nclient_id a\nclient_secret b\nteam acme\n}",
		"bad email domain":      "provider discord {\nclient_id a\nclient_secret b\nallowed_email_domains @example.com\n}",
		"ttl without a rule":    "provider gitlab {\nclient_id a\nclient_secret b\nadmission_ttl 1h\n}",
		"google groups":         "provider google {\nclient_id a\nclient_secret b\nallowed_groups x\n}",
	}
	for name, body := range cases {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\n" + body + "\n}"))
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Options that only mean something with a provider.
	for _, body := range []string{"after_sign_in /a", "link_by_email", "redirect_origins https://x.example"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\n" + body + "\n}")); err != nil {
			t.Fatal(err)
		}
		if err := h.checkSignIn(); err == nil {
			t.Errorf("%q without a provider: accepted", body)
		}
	}
	var h Handler
	_ = h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\nprovider password\nredirect_origins https://x.example/path\n}"))
	if err := h.checkSignIn(); err == nil || !strings.Contains(err.Error(), "not an origin") {
		t.Errorf("an origin with a path: %v", err)
	}
	// The mailer's check reads as a config error of the provider.
	err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\nprovider email {\nsmtp_host h\nfrom a@example.com\nsmtp_tls ssl\n}\n}"))
	if err == nil || !strings.Contains(err.Error(), `provider email: smtp_tls "ssl" is unknown`) || strings.Contains(err.Error(), "signin:") {
		t.Errorf("a bad smtp_tls: %v", err)
	}
}

// providersOf decodes the handler's provider modules, not provisioned.
func providersOf(t *testing.T, h *Handler) []caddy.Module {
	t.Helper()
	mods, err := h.providerModules()
	if err != nil {
		t.Fatal(err)
	}
	return mods
}

// TestSignInJSON: in JSON the sign-in options sit under sign_in, not
// among the handler's own fields.
func TestSignInJSON(t *testing.T) {
	var h Handler
	cfg := `{"issuer":"https://app.example.com","sign_in":{"providers":[{"type":"password","min_length":12}],"after_sign_in":"/home","link_by_email":true}}`
	if err := caddy.StrictUnmarshalJSON([]byte(cfg), &h); err != nil {
		t.Fatal(err)
	}
	if err := h.checkConfig(); err != nil {
		t.Fatal(err)
	}
	if o := h.SignIn; len(o.Providers) != 1 || providersOf(t, &h)[0].(*PasswordProvider).MinLength != 12 || o.AfterSignIn != "/home" || !o.LinkByEmail {
		t.Fatalf("sign_in decoded as %+v", o)
	}
	flat := `{"issuer":"https://app.example.com","providers":[{"type":"password"}]}`
	if err := caddy.StrictUnmarshalJSON([]byte(flat), new(Handler)); err == nil {
		t.Fatal("providers outside sign_in were accepted")
	}
	var none Handler
	if err := caddy.StrictUnmarshalJSON([]byte(`{"issuer":"https://app.example.com","sign_in":{"after_sign_in":"/home"}}`), &none); err != nil {
		t.Fatal(err)
	}
	if err := none.checkSignIn(); err == nil {
		t.Fatal("sign_in options without a provider were accepted")
	}
}

// browserClient keeps cookies and does not follow redirects.
func browserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: testerTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func send(t *testing.T, c *http.Client, method, u string, form url.Values, headers map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// sameOriginPost is what a browser sends for a form on the gateway's page.
var sameOriginPost = map[string]string{"Origin": gatewayOrigin, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}

var navigate = map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}

// scriptPost is what a browser sends for a fetch from the site's page.
var scriptPost = map[string]string{"Origin": gatewayOrigin, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}

// followBack follows the answer to a form post from a page that failed: a
// 303 back to a page of the gateway with ?error=code, loaded by c.
func followBack(t *testing.T, c *http.Client, resp *http.Response, code string) (*http.Response, string) {
	t.Helper()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Query().Get("error") != code {
		t.Fatalf("a failed form post answered %d to %q; want 303 back with error=%s", resp.StatusCode, resp.Header.Get("Location"), code)
	}
	return send(t, c, "GET", loc.String(), nil, navigate)
}

func tokenClaims(t *testing.T, g *gateway) map[string]any {
	t.Helper()
	token := g.upstream.last(t).Header.Get(DefaultInjectHeader)
	if token == "" {
		t.Fatal("upstream got no token")
	}
	raw, err := json.Marshal(verifyLikeConvex(t, token))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestGatewayPasswordSignIn(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, redis.URL(), "provider password\nafter_sign_in /home")
	c := browserClient()

	// Signed out: /loggedin sends the browser to the gateway's own page.
	resp, _ := send(t, c, "GET", gatewayOrigin+"/loggedin?x=1", nil, navigate)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/auth/signin?redirectTo=%2Floggedin%3Fx%3D1" {
		t.Fatalf("/loggedin signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := send(t, c, "GET", gatewayOrigin+"/auth/signin?redirectTo=%2Floggedin%3Fx%3D1", nil, navigate)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `action="/auth/signin/password"`) || !strings.Contains(page, `name="redirectTo" value="/loggedin?x=1"`) {
		t.Fatalf("sign-in page: %d\n%s", resp.StatusCode, page)
	}
	if g.upstream.count() != 0 {
		t.Fatal("the sign-in page was passed to the upstream")
	}

	// A cross-site form post is refused with a page that says why.
	resp, page = send(t, c, "POST", gatewayOrigin+"/auth/signin/password",
		url.Values{"intent": {"signup"}, "email": {"ada@example.com"}, "password": {"correct horse"}},
		map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "sign-in forms only work from this site") {
		t.Fatalf("cross-site sign-up: %d", resp.StatusCode)
	}

	resp, _ = send(t, c, "POST", gatewayOrigin+"/auth/signin/password",
		url.Values{"intent": {"signup"}, "email": {"Ada@Example.com"}, "password": {"correct horse"}, "redirectTo": {"/loggedin?x=1"}}, sameOriginPost)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/loggedin?x=1" {
		t.Fatalf("sign-up: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := send(t, c, "GET", gatewayOrigin+"/loggedin?x=1", nil, navigate)
	if resp.StatusCode != http.StatusOK || body != "upstream saw /loggedin" {
		t.Fatalf("/loggedin signed in: %d %q", resp.StatusCode, body)
	}
	claims := tokenClaims(t, g)
	userID, _ := claims["sub"].(string)
	if len(userID) != 22 || claims["email"] != "ada@example.com" || claims["email_verified"] == true {
		t.Fatalf("claims %v; want a random user ID and the user record's unverified email", claims)
	}
	site, _ := url.Parse(gatewayOrigin)
	var first string
	for _, ck := range c.Jar.Cookies(site) {
		if ck.Name == sessionCookieName {
			first = ck.Value
		}
	}

	// Signing in again replaces the session: new ID, old cookie dead.
	resp, _ = send(t, c, "POST", gatewayOrigin+"/auth/signin/password",
		url.Values{"intent": {"signin"}, "email": {"ada@example.com"}, "password": {"correct horse"}}, sameOriginPost)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/home" {
		t.Fatalf("sign-in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if r, _ := g.do("GET", "/loggedin", map[string]string{"Cookie": sessionCookieName + "=" + first}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the session replaced by a sign-in still works: %d", r.StatusCode)
	}
	send(t, c, "GET", gatewayOrigin+"/loggedin", nil, navigate)
	again := tokenClaims(t, g)
	if again["sub"] != userID || again["sid"] == claims["sid"] {
		t.Fatalf("second sign-in: sub %v sid %v; want sub %s and a new sid", again["sub"], again["sid"], userID)
	}

	// Signed in, the sign-in page sends the browser on.
	resp, _ = send(t, c, "GET", gatewayOrigin+"/auth/signin?redirectTo=%2Floggedin", nil, navigate)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/loggedin" {
		t.Fatalf("signed-in /auth/signin: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Wrong password and unknown account: the same answer, from a page
	// (back to the sign-in page) and from a script (401).
	for _, from := range []map[string]string{sameOriginPost, scriptPost} {
		cw, cu := browserClient(), browserClient()
		wrong, wrongPage := send(t, cw, "POST", gatewayOrigin+"/auth/signin/password",
			url.Values{"intent": {"signin"}, "email": {"ada@example.com"}, "password": {"wrong"}}, from)
		unknown, unknownPage := send(t, cu, "POST", gatewayOrigin+"/auth/signin/password",
			url.Values{"intent": {"signin"}, "email": {"bob@example.com"}, "password": {"wrong"}}, from)
		want := http.StatusUnauthorized
		if from["Sec-Fetch-Mode"] == "navigate" {
			want = http.StatusOK
			if wrong.Header.Get("Location") != unknown.Header.Get("Location") {
				t.Fatalf("wrong password back to %q, unknown account to %q", wrong.Header.Get("Location"), unknown.Header.Get("Location"))
			}
			wrong, wrongPage = followBack(t, cw, wrong, "credentials")
			unknown, unknownPage = followBack(t, cu, unknown, "credentials")
		}
		if wrong.StatusCode != want || unknown.StatusCode != want || !strings.Contains(wrongPage, "The email or password is incorrect.") ||
			strings.ReplaceAll(wrongPage, "ada@", "x@") != strings.ReplaceAll(unknownPage, "bob@", "x@") {
			t.Fatalf("wrong password %d, unknown account %d: want the same %d page", wrong.StatusCode, unknown.StatusCode, want)
		}
	}

	// Sign out: /loggedin redirects again.
	resp, _ = send(t, c, "POST", gatewayOrigin+"/auth/signout", url.Values{}, sameOriginPost)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if resp, _ := send(t, c, "GET", gatewayOrigin+"/loggedin", nil, navigate); resp.StatusCode != http.StatusFound {
		t.Fatalf("/loggedin after sign-out: %d", resp.StatusCode)
	}
}

// startTestOP runs zitadel/oidc's example OpenID Provider on loopback with
// a client whose redirect URI is the gateway's callback for name.
func startTestOP(t *testing.T, clientID, name string) string {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	storage.RegisterClients(storage.WebClient(clientID, "op-secret", gatewayOrigin+"/auth/callback/"+name))
	srv.Config.Handler = exampleop.SetupServer(issuer, storage.NewStorage(storage.NewUserStore(issuer)), nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return issuer
}

func TestGatewayOIDCSignIn(t *testing.T) {
	redis := redistest.StartServer(t)
	issuer := startTestOP(t, "gateway-client", "zitadel")
	t.Setenv("TEST_OIDC_CLIENT_SECRET", "op-secret")
	g := startGateway(t, redis.URL(), fmt.Sprintf(`provider oidc zitadel {
			issuer %s
			client_id gateway-client
			client_secret {env.TEST_OIDC_CLIENT_SECRET}
			label Zitadel
		}`, issuer))
	c := browserClient()
	_, page := send(t, c, "GET", gatewayOrigin+"/auth/signin?redirectTo=%2Floggedin", nil, navigate)
	if !strings.Contains(page, `href="/auth/signin/zitadel?redirectTo=%2Floggedin"`) || !strings.Contains(page, "Continue with Zitadel") {
		t.Fatalf("the page does not list the provider:\n%s", page)
	}
	resp, _ := send(t, c, "GET", gatewayOrigin+"/auth/signin/zitadel?redirectTo=%2Floggedin", nil, navigate)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), issuer+"/auth?") {
		t.Fatalf("start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The user signs in at the provider.
	resp, _ = send(t, c, "GET", resp.Header.Get("Location"), nil, nil)
	login, _ := url.Parse(issuer + resp.Header.Get("Location"))
	resp, _ = send(t, c, "POST", issuer+"/login/username",
		url.Values{"id": {login.Query().Get("authRequestID")}, "username": {"test-user2"}, "password": {"verysecure"}}, nil)
	resp, _ = send(t, c, "GET", resp.Header.Get("Location"), nil, nil)
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, gatewayOrigin+"/auth/callback/zitadel?") {
		t.Fatalf("the provider sent the browser to %q", callback)
	}
	resp, _ = send(t, c, "GET", callback, nil, navigate)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/loggedin" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := send(t, c, "GET", gatewayOrigin+"/loggedin", nil, navigate); resp.StatusCode != http.StatusOK {
		t.Fatalf("/loggedin after the OIDC sign-in: %d", resp.StatusCode)
	}
	claims := tokenClaims(t, g)
	if claims["email"] != "test-user2@zitadel.ch" || claims["email_verified"] != true || claims["name"] != "Test User2" {
		t.Fatalf("claims %v; want the provider's verified email and name from the user record", claims)
	}
	// Replaying the callback: the state is single use.
	resp, _ = send(t, browserClient(), "GET", callback, nil, navigate)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "error=state") {
		t.Fatalf("replayed callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestGatewaySignInTemplate(t *testing.T) {
	redis := redistest.StartServer(t)
	tmpl := filepath.Join(t.TempDir(), "signin.html")
	if err := os.WriteFile(tmpl, []byte(`<h1>Custom {{.Site}}</h1>{{if .Password}}<form action="{{.PasswordAction}}"></form>{{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	startGateway(t, redis.URL(), "provider password\nsign_in_template "+tmpl)
	resp, page := send(t, browserClient(), "GET", gatewayOrigin+"/auth/signin", nil, navigate)
	if resp.StatusCode != http.StatusOK || page != `<h1>Custom `+strings.TrimPrefix(gatewayOrigin, "http://")+`</h1><form action="/auth/signin/password"></form>` {
		t.Fatalf("custom template: %d %q", resp.StatusCode, page)
	}
}

func TestGatewayWithoutProvidersLeavesSignInToTheApp(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, redis.URL(), "")
	resp, body := g.do("GET", "/auth/signin", nil)
	if resp.StatusCode != http.StatusOK || body != "upstream saw /auth/signin" {
		t.Fatalf("/auth/signin without providers: %d %q; want it passed to the app", resp.StatusCode, body)
	}
}

func TestUnmarshalAnonymousProvider(t *testing.T) {
	parse := func(body string) (*Handler, error) {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\n" + body + "\n}"))
		if err == nil {
			err = h.checkSignIn()
		}
		return &h, err
	}
	h, err := parse("provider anonymous {\nguest_ttl 48h\n}")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := providersOf(t, h)[0].(*AnonymousProvider); !ok || time.Duration(p.GuestTTL) != 48*time.Hour {
		t.Fatalf("provider %+v; want anonymous with guest_ttl 48h", p)
	}
	if h, err = parse("provider anonymous"); err != nil || providersOf(t, h)[0].(*AnonymousProvider).GuestTTL != 0 {
		t.Fatalf("provider anonymous alone: %v", err)
	}
	for name, body := range map[string]string{
		"short ttl":        "provider anonymous {\nguest_ttl 30s\n}",
		"repeated ttl":     "provider anonymous {\nguest_ttl 1h\nguest_ttl 2h\n}",
		"bad ttl":          "provider anonymous {\nguest_ttl soon\n}",
		"foreign option":   "provider anonymous {\nmin_length 3\n}",
		"label":            "provider anonymous {\nlabel Guest\n}",
		"named":            "provider anonymous guests",
		"twice":            "provider anonymous\nprovider anonymous",
		"ttl on password":  "provider password {\nguest_ttl 1h\n}",
		"ttl without args": "provider anonymous {\nguest_ttl\n}",
	} {
		if _, err := parse(body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// JSON says the same, and checks the same.
	var j Handler
	if err := json.Unmarshal([]byte(`{"issuer":"https://app.example.com","sign_in":{"providers":[{"type":"anonymous","guest_ttl":"10s"}]}}`), &j); err != nil {
		t.Fatal(err)
	}
	if err := j.checkSignIn(); err == nil || !strings.Contains(err.Error(), "guest_ttl") {
		t.Fatalf("JSON guest_ttl 10s: %v; want refused", err)
	}
}
