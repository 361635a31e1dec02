package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/idptest"
	"github.com/convex-auth/caddy-convex-auth/internal/smtptest"
)

// appleIdP runs Sign in with Apple on 127.0.0.1 (another site than the
// gateway's localhost) and writes the key it trusts as a .p8 file. It
// returns the provider and the Caddyfile block of provider apple.
func appleIdP(t *testing.T) (*idptest.Server, string) {
	t.Helper()
	s := idptest.Start(idptest.Apple, "com.example.web", "")
	t.Cleanup(s.Close)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	p8 := filepath.Join(t.TempDir(), "AuthKey_KEY1234567.p8")
	if err := os.WriteFile(p8, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s.AppleTeamID, s.AppleKeyID, s.AppleKey = "TEAM123456", "KEY1234567", &k.PublicKey
	return s, fmt.Sprintf(`
		provider apple {
			client_id %s
			team_id %s
			key_id %s
			private_key_file %s
			auth_url %s
			token_url %s
			jwks_url %s
		}`, s.ClientID, s.AppleTeamID, s.AppleKeyID, p8, s.AuthURL(), s.TokenURL(), s.JWKSURL())
}

// TestBrowserProviders runs headless Chromium against the built Caddy
// with every provider type on (e2e/browser/providers.mjs): a button with
// an inline mark for each, nothing loaded from elsewhere; Sign in with
// Apple, whose answer is a cross-site form POST that Chromium sends
// without the SameSite=Lax flow cookie, signs the user in through the
// gateway's GET relay; signed out, the page marks Apple as last used.
// Screenshots of that page (1280 and 390 px, light and dark) land in
// e2e/browser/out/, or in docs/images/ with UPDATE_DOC_SCREENSHOTS=1.
func TestBrowserProviders(t *testing.T) {
	caddyBin(t)
	chromium, node := browserTools(t)
	apple, appleBlock := appleIdP(t)
	apple.SignInAs(idptest.User{Subject: "001234.abcd.5678", Email: "ada@example.com", EmailVerified: "true", FirstName: "Ada", LastName: "Lovelace"})
	sink := smtptest.Start(t, nil, "", "")
	smtpHost, smtpPort, _ := net.SplitHostPort(sink.Addr)
	// The app must never see the gateway's own cookies, the hint included.
	var leaked atomic.Value
	page := identityPage(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := r.Header.Get("Cookie"); strings.Contains(c, "convex_auth_") {
			leaked.Store(c)
		}
		page.ServeHTTP(w, r)
	}))
	t.Cleanup(upstream.Close)

	origin := browserGateway(t, upstream.URL, fmt.Sprintf(`
		protect /loggedin*
		provider github {
			client_id gh
			client_secret gh-secret
		}
		provider google {
			client_id g
			client_secret g-secret
		}%s
		provider microsoft {
			client_id ms
			client_secret ms-secret
		}
		provider gitlab {
			client_id gl
			client_secret gl-secret
		}
		provider discord {
			client_id dc
			client_secret dc-secret
		}
		provider slack {
			client_id sl
			client_secret sl-secret
		}
		provider oidc okta {
			issuer https://example.okta.com
			client_id okta
			client_secret okta-secret
			label Okta
		}
		provider oauth2 acme {
			auth_url https://login.acme.example/authorize
			token_url https://login.acme.example/token
			userinfo_url https://login.acme.example/me
			client_id acme
			client_secret acme-secret
			label "Acme SSO"
		}
		provider password
		provider email
		provider anonymous
		email {
			smtp_host %s
			smtp_port %s
			smtp_tls none
			from "Example <login@example.com>"
		}`, appleBlock, smtpHost, smtpPort))

	outDir, _ := filepath.Abs(filepath.Join(browserDir, "out"))
	if os.Getenv("UPDATE_DOC_SCREENSHOTS") == "1" {
		outDir, _ = filepath.Abs(filepath.Join("..", "docs", "images"))
	}
	runBrowserScript(t, node, chromium, "providers.mjs", filepath.Join(outDir, "providers-failure.png"), []string{origin, apple.URL, outDir})
	if c := leaked.Load(); c != nil {
		t.Fatalf("the upstream got the gateway's cookies: %q", c)
	}
}

// TestEntraTenantIssuerThroughBinary: the built Caddy with provider
// microsoft for the organizations endpoint: a work account signs in, its
// email unverified (Entra does not vouch for it), its session capped at
// the admission TTL; a token whose issuer names another tenant than its
// tid, and a personal account's token, sign nobody in; allowed_tenants
// refuses another tenant with a page that says why.
func TestEntraTenantIssuerThroughBinary(t *testing.T) {
	caddyBin(t)
	const contoso, fabrikam = "72f988bf-86f1-41af-91ab-2d7cd011db47", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	entra := idptest.Start(idptest.Entra, "entra-app", "entra-secret")
	t.Cleanup(entra.Close)
	upstream := httptest.NewServer(identityPage(t))
	t.Cleanup(upstream.Close)
	origin := browserGateway(t, upstream.URL, fmt.Sprintf(`
		protect /loggedin*
		provider microsoft {
			client_id %s
			client_secret %s
			tenant organizations
			authority %s
			allowed_tenants %s
			admission_ttl 2h
		}`, entra.ClientID, entra.ClientSecret, entra.URL, contoso))

	user := func(tid, oid string) idptest.User {
		return idptest.User{Subject: oid, Email: "megan@contoso.com", Name: "Megan Bowen", Claims: map[string]any{"tid": tid}}
	}
	// signIn runs the flow in a new browser and returns it and where the
	// callback sent it.
	signIn := func() (*http.Client, string) {
		t.Helper()
		c := newJarClient(t)
		resp, _ := get(t, c, origin+"/auth/signin/microsoft")
		authURL := resp.Header.Get("Location")
		if !strings.HasPrefix(authURL, entra.URL+"/organizations/oauth2/v2.0/authorize?") {
			t.Fatalf("start sent the browser to %q; want the organizations endpoint", authURL)
		}
		resp, _ = get(t, c, authURL)
		resp, _ = get(t, c, resp.Header.Get("Location")) // the callback
		return c, resp.Header.Get("Location")
	}

	entra.SignInAs(user(contoso, "00000000-0000-0000-0000-000000000001"))
	c, loc := signIn()
	if loc != "/" {
		t.Fatalf("a work account's sign-in led to %q; want /", loc)
	}
	resp, body := get(t, c, origin+"/auth/session")
	var s struct {
		User struct {
			Email         string `json:"email"`
			EmailVerified bool   `json:"emailVerified"`
		} `json:"user"`
		Session struct {
			Provider  string `json:"provider"`
			CreatedAt int64  `json:"createdAt"`
			ExpiresAt int64  `json:"expiresAt"`
		} `json:"session"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("/auth/session: %d %s", resp.StatusCode, body)
	}
	if s.User.Email != "megan@contoso.com" || s.User.EmailVerified || s.Session.Provider != "microsoft" {
		t.Fatalf("session %+v; want the email unverified, provider microsoft", s)
	}
	if life := time.Duration(s.Session.ExpiresAt-s.Session.CreatedAt) * time.Millisecond; life != 2*time.Hour {
		t.Fatalf("the admitted session lasts %s; want admission_ttl 2h", life)
	}

	entra.SetIssuer(entra.URL + "/" + fabrikam + "/v2.0")
	if _, loc := signIn(); !strings.Contains(loc, "error=provider") {
		t.Fatalf("a token whose issuer is another tenant's led to %q; want error=provider", loc)
	}
	entra.SetIssuer("")
	entra.SignInAs(user("9188040d-6c67-4c5b-b112-36a304b66dad", "00000000-0000-0000-0000-0000000000aa"))
	if _, loc := signIn(); !strings.Contains(loc, "error=provider") {
		t.Fatalf("a personal account through organizations led to %q; want error=provider", loc)
	}
	entra.SignInAs(user(fabrikam, "00000000-0000-0000-0000-000000000002"))
	c, loc = signIn()
	if !strings.Contains(loc, "error=refused_tenant") {
		t.Fatalf("another tenant led to %q; want error=refused_tenant", loc)
	}
	if _, page := get(t, c, origin+loc); !strings.Contains(page, "does not admit accounts of your Microsoft organisation") {
		t.Fatalf("the refusal page does not say why:\n%s", page)
	}
	if resp, _ := get(t, c, origin+"/auth/session"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/auth/session after a refusal: %d; want 401", resp.StatusCode)
	}
}
