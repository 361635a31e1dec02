package caddymodule

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// startAcme runs Acme's OAuth 2.0 server as docs/providers.md's example
// provider expects it: /oauth/authorize approves at once, /oauth/token
// redeems a code once (with its PKCE verifier), /api/user answers for
// the access token.
func startAcme(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	codes := map[string]string{} // code -> S256 challenge
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth/authorize":
			q := r.URL.Query()
			if q.Get("client_id") != "acme-client" || q.Get("code_challenge_method") != "S256" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			mu.Lock()
			codes["code-1"] = q.Get("code_challenge")
			mu.Unlock()
			back, _ := url.Parse(q.Get("redirect_uri"))
			back.RawQuery = url.Values{"code": {"code-1"}, "state": {q.Get("state")}}.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
		case "/oauth/token":
			id, secret, _ := r.BasicAuth()
			_ = r.ParseForm()
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			mu.Lock()
			challenge, ok := codes[r.PostForm.Get("code")]
			delete(codes, r.PostForm.Get("code"))
			mu.Unlock()
			if id != "acme-client" || secret != "acme-secret" || !ok || challenge != base64.RawURLEncoding.EncodeToString(sum[:]) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"acme-token","token_type":"Bearer"}`))
		case "/api/user":
			if r.Header.Get("Authorization") != "Bearer acme-token" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "u-42", "email": "wile@acme.example", "email_verified": true, "name": "Wile E."})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestThirdPartyProviderSignsIn: a provider type registered outside the
// module (the test-only acme module) loads from the Caddyfile and signs a
// user in end to end.
func TestThirdPartyProviderSignsIn(t *testing.T) {
	redis := redistest.StartServer(t)
	acme := startAcme(t)
	t.Setenv("TEST_ACME_SECRET", "acme-secret")
	g := startGateway(t, redis.URL(), "provider acme {\nbase_url "+acme.URL+"\nclient_id acme-client\nclient_secret {env.TEST_ACME_SECRET}\n}")
	c := browserClient()
	if _, page := send(t, c, "GET", gatewayOrigin+"/auth/signin", nil, navigate); !strings.Contains(page, "Continue with Acme") {
		t.Fatalf("the sign-in page does not list the provider:\n%s", page)
	}
	resp, _ := send(t, c, "GET", gatewayOrigin+"/auth/signin/acme?redirectTo=%2Floggedin", nil, navigate)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), acme.URL+"/oauth/authorize?") {
		t.Fatalf("start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = send(t, c, "GET", resp.Header.Get("Location"), nil, nil)
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, gatewayOrigin+"/auth/callback/acme?") {
		t.Fatalf("Acme sent the browser to %q", callback)
	}
	resp, _ = send(t, c, "GET", callback, nil, navigate)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/loggedin" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := send(t, c, "GET", gatewayOrigin+"/loggedin", nil, navigate); resp.StatusCode != http.StatusOK {
		t.Fatalf("/loggedin after the sign-in: %d", resp.StatusCode)
	}
	if claims := tokenClaims(t, g); claims["email"] != "wile@acme.example" || claims["email_verified"] != true || claims["name"] != "Wile E." {
		t.Fatalf("claims %v; want Acme's user", claims)
	}
	// The callback replayed in another browser signs nobody in.
	resp, _ = send(t, browserClient(), "GET", callback, nil, navigate)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "error=state") {
		t.Fatalf("replayed callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestProviderJSON: providers load from JSON by their type, a third
// party's too; an option of another type is refused naming where it
// belongs.
func TestProviderJSON(t *testing.T) {
	check := func(providers string) error {
		var h Handler
		cfg := `{"issuer":"https://app.example.com","sign_in":{"providers":[` + providers + `]}}`
		if err := caddy.StrictUnmarshalJSON([]byte(cfg), &h); err != nil {
			t.Fatal(err)
		}
		return h.checkSignIn()
	}
	if err := check(`{"type":"acme","base_url":"https://login.acme.example","client_id":"a","client_secret":"b"},{"type":"github","client_id":"a","client_secret":"b"}`); err != nil {
		t.Fatal(err)
	}
	for providers, want := range map[string]string{
		`{"type":"github","client_id":"a","client_secret":"b","min_length":3}`:               "provider github: min_length is an option of provider password, not of github",
		`{"type":"password","client_id":"a"}`:                                                "client_id is an option of provider acme, apple, discord, github, gitlab, google, microsoft, oauth2, oidc, slack, not of password",
		`{"type":"email","site_name":"Example"}`:                                             "site_name is an option of the email block (sign_in.email), not of provider email",
		`{"type":"github","client_id":"a","client_secret":"b","issuer":"https://x.example"}`: "issuer is an option of provider google, oidc, slack, not of github",
		`{"type":"acme","client_id":"a","client_secret":"b","guest_ttl":"1h"}`:               "guest_ttl is an option of provider anonymous, not of acme",
		`{"type":"facebook"}`: `provider type "facebook" is unknown: use acme, anonymous, apple, discord, email, github, gitlab, google, microsoft, oauth2, oidc, passkey, password or slack`,
		`{"client_id":"a"}`:   "a provider has no type",
	} {
		if err := check(providers); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error containing %q", providers, err, want)
		}
	}
}

// TestProviderDocExample: docs/providers.md shows example_provider_test.go
// as it is.
func TestProviderDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/providers.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```go\n(package acme\n.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/providers.md has no ```go block starting with package acme")
	}
	code, err := os.ReadFile("example_provider_test.go")
	if err != nil {
		t.Fatal(err)
	}
	// The test file's own header (package clause and the note about this
	// test) is not part of the example.
	body := string(code)[strings.Index(string(code), "import ("):]
	if want := "package acme\n\n" + body; string(m[1]) != want {
		t.Fatal("docs/providers.md's example differs from caddymodule/example_provider_test.go: copy the file's code (from its imports on) into the doc")
	}
}
