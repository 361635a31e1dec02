package signintest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

// OP is a real OpenID Provider, zitadel/oidc's op package with its
// example in-memory storage and login UI, on loopback.
type OP struct {
	Srv      *httptest.Server
	Issuer   string
	ClientID string
	Secret   string
	Storage  *storage.Storage
}

// The example storage's user; it has a verified email.
const (
	OPUsername = "test-user2"
	OPPassword = "verysecure"
	OPEmail    = "test-user2@zitadel.ch"
)

var opClients atomic.Int64

// StartOP runs the provider and registers a confidential web client with
// the given redirect URIs.
func StartOP(t *testing.T, redirectURIs ...string) *OP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	op := &OP{Srv: srv, Issuer: issuer, ClientID: fmt.Sprintf("web-%d", opClients.Add(1)), Secret: "client-secret"}
	// The example keeps clients in a package map: register before serving.
	storage.RegisterClients(storage.WebClient(op.ClientID, op.Secret, redirectURIs...))
	op.Storage = storage.NewStorage(storage.NewUserStore(issuer))
	srv.Config.Handler = exampleop.SetupServer(issuer, op.Storage, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return op
}

// SignIn drives the provider's login UI like a user: open the
// authorization URL, post the username and password, and return the URL
// the provider sends the browser back to (the site's callback with code
// and state), without opening it.
func (op *OP) SignIn(b *Browser, authURL string) string {
	b.T.Helper()
	resp, _ := b.Get(authURL)
	if resp.StatusCode != http.StatusFound {
		b.T.Fatalf("authorize: status %d", resp.StatusCode)
	}
	login, err := url.Parse(Location(b.T, resp))
	if err != nil {
		b.T.Fatal(err)
	}
	id := login.Query().Get("authRequestID")
	if id == "" {
		b.T.Fatalf("authorize sent the browser to %s, not to the login UI", login)
	}
	resp, body := b.Post(op.Issuer+"/login/username", url.Values{"id": {id}, "username": {OPUsername}, "password": {OPPassword}})
	if resp.StatusCode != http.StatusFound {
		b.T.Fatalf("login: status %d: %s", resp.StatusCode, body)
	}
	resp, body = b.Get(Location(b.T, resp))
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		b.T.Fatalf("authorize callback: status %d: %s", resp.StatusCode, body)
	}
	return Location(b.T, resp)
}

// Userinfo asks the provider who the access token belongs to.
func (op *OP) Userinfo(ctx context.Context, authorization string) (map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, op.Issuer+"/userinfo", nil)
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: %s", resp.Status)
	}
	var claims map[string]any
	return claims, json.NewDecoder(resp.Body).Decode(&claims)
}

// StartGitHubAPI fakes the two GitHub REST endpoints the provider reads;
// it accepts only access tokens the OP vouches for.
func StartGitHubAPI(t *testing.T, op *OP) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := op.Userinfo(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/user":
			_ = json.NewEncoder(w).Encode(map[string]any{
				"id": 583231, "login": "octo-" + OPUsername, "name": claims["name"], "email": nil,
				"avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
			})
		case "/user/emails":
			_ = json.NewEncoder(w).Encode([]map[string]any{
				{"email": "old@example.com", "primary": false, "verified": true},
				{"email": claims["email"], "primary": true, "verified": claims["email_verified"]},
			})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// StartProviders runs one OP behind three providers of the site at
// origin: "zitadel" (generic OIDC by discovery), "google" (Google's
// provider with its issuer pointed at the OP) and "github" (GitHub's
// provider: token exchange at the OP, the REST API faked over the OP's
// user info).
func StartProviders(t *testing.T, origin string) (*OP, []provider.OAuth) {
	t.Helper()
	var callbacks []string
	for _, name := range []string{"zitadel", "google", "github"} {
		callbacks = append(callbacks, origin+"/auth/callback/"+name)
	}
	op := StartOP(t, callbacks...)
	api := StartGitHubAPI(t, op)
	zit, err := provider.NewOIDC(provider.OIDCConfig{Common: provider.Common{Name: "zitadel", Label: "Zitadel", ClientID: op.ClientID, ClientSecret: op.Secret}, Issuer: op.Issuer})
	if err != nil {
		t.Fatal(err)
	}
	google, err := provider.NewGoogle(provider.GoogleConfig{OIDCConfig: provider.OIDCConfig{Common: provider.Common{ClientID: op.ClientID, ClientSecret: op.Secret}, Issuer: op.Issuer}})
	if err != nil {
		t.Fatal(err)
	}
	github, err := provider.NewGitHub(provider.GitHubConfig{Common: provider.Common{
		ClientID: op.ClientID, ClientSecret: op.Secret,
		AuthURL: op.Issuer + "/auth", TokenURL: op.Issuer + "/oauth/token",
		// The OP is an OIDC provider: it wants the openid scope.
		Scopes: []string{"openid", "profile", "email"},
	}, APIURL: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	return op, []provider.OAuth{zit, google, github}
}

// StartOAuth opens /auth/signin/<provider> and returns the provider URL
// it redirects to.
func StartOAuth(b *Browser, origin, provider, redirectTo string) string {
	b.T.Helper()
	u := origin + "/auth/signin/" + provider
	if redirectTo != "" {
		u += "?redirectTo=" + url.QueryEscape(redirectTo)
	}
	resp, body := b.Get(u)
	if resp.StatusCode != http.StatusFound {
		b.T.Fatalf("start %s: status %d: %s", provider, resp.StatusCode, body)
	}
	return Location(b.T, resp)
}

// SignInOAuth runs a whole flow at op and returns where the site sent the
// browser.
func (op *OP) SignInOAuth(b *Browser, origin, provider, redirectTo string) string {
	b.T.Helper()
	callback := op.SignIn(b, StartOAuth(b, origin, provider, redirectTo))
	resp, body := b.Get(callback)
	if resp.StatusCode != http.StatusSeeOther {
		b.T.Fatalf("callback: status %d: %s", resp.StatusCode, body)
	}
	return Location(b.T, resp)
}
