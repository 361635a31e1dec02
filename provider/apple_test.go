package provider

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/convex-auth/caddy-convex-auth/internal/idptest"
)

func appleProvider(t *testing.T, s *idptest.Server, pem string) OAuth {
	t.Helper()
	return mustNew(t, NewApple, AppleConfig{Common: Common{ClientID: s.ClientID, AuthURL: s.AuthURL(), TokenURL: s.TokenURL()},
		TeamID: s.AppleTeamID, KeyID: s.AppleKeyID, PrivateKey: strings.ReplaceAll(pem, "\n", `\n`), JWKSURL: s.JWKSURL()})
}

// TestAppleSignIn: the answer is a form post; the client secret is an
// ES256 JWT Apple accepts, a new one for each exchange; the name comes
// only at the first sign-in; email_verified "true" (a string) is verified.
func TestAppleSignIn(t *testing.T) {
	s := startIdP(t, idptest.Apple)
	p := appleProvider(t, s, appleKey(t, s))
	if info := p.Info(); !info.FormPost || info.Kind != KindApple || info.Label != "Apple" || info.Name != "apple" {
		t.Fatalf("Info() = %+v; want a form-post apple provider", info)
	}
	u, _ := p.AuthCodeURL(context.Background(), Flow{State: "s", Verifier: "v", Nonce: "n", RedirectURI: testCallback})
	q, _ := url.Parse(u)
	if got := q.Query(); got.Get("response_mode") != "form_post" || got.Get("scope") != "name email" || got.Get("nonce") != "n" || got.Get("code_challenge") == "" {
		t.Fatalf("authorization URL %s; want form_post, scope name email, the nonce and PKCE", u)
	}

	s.SignInAs(idptest.User{Subject: "001234.abcd.5678", Email: "ada@example.com", EmailVerified: "true", FirstName: "Ada", LastName: "Lovelace"})
	first := mustSignIn(t, p)
	if first != (Identity{Subject: "001234.abcd.5678", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}) {
		t.Fatalf("first sign-in: %+v", first)
	}
	again := mustSignIn(t, p)
	if again.Name != "" || again.Subject != first.Subject || !again.EmailVerified {
		t.Fatalf("second sign-in: %+v; want the same account, no name (Apple sends it once)", again)
	}
	// Each exchange carried its own client secret, valid for minutes.
	forms := s.TokenForms()
	if len(forms) != 2 || forms[0].Get("client_secret") == forms[1].Get("client_secret") {
		t.Fatalf("token requests %d; want 2 with distinct client secrets", len(forms))
	}
	payload, err := jws.Verify([]byte(forms[0].Get("client_secret")), jws.WithKey(jwa.ES256(), s.AppleKey))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Iat, Exp int64 }
	_ = json.Unmarshal(payload, &c)
	if life := time.Duration(c.Exp-c.Iat) * time.Second; life <= 0 || life > 10*time.Minute {
		t.Fatalf("client secret lives %s; want a few minutes", life)
	}

	// Hide My Email: a relay address, verified like any (boolean true here).
	s.SignInAs(idptest.User{Subject: "000999.relay", Email: "x8sqp2dgvv@privaterelay.appleid.com", EmailVerified: true,
		Claims: map[string]any{"is_private_email": "true"}})
	if id := mustSignIn(t, p); !id.EmailVerified || id.Email != "x8sqp2dgvv@privaterelay.appleid.com" {
		t.Fatalf("relay address: %+v; want it verified", id)
	}
	s.SignInAs(idptest.User{Subject: "000777.unverified", Email: "eve@example.com", EmailVerified: "false"})
	if id := mustSignIn(t, p); id.EmailVerified {
		t.Fatalf(`email_verified "false" read as verified: %+v`, id)
	}
}

// TestAppleClientSecretRefused: a secret signed by another key is refused
// by Apple, and the sign-in with it.
func TestAppleClientSecretRefused(t *testing.T) {
	s := startIdP(t, idptest.Apple)
	other := startIdP(t, idptest.Apple)
	pem := appleKey(t, other) // a key Apple does not know for this team
	appleKey(t, s)
	p := appleProvider(t, s, pem)
	s.SignInAs(idptest.User{Subject: "001", Email: "ada@example.com", EmailVerified: true})
	if _, err := signIn(t, p); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("sign-in with a secret of another key: %v; want invalid_client", err)
	}
}

func TestAppleConfig(t *testing.T) {
	s := startIdP(t, idptest.Apple)
	pem := appleKey(t, s)
	file := filepath.Join(t.TempDir(), "AuthKey_KEY1234567.p8")
	if err := os.WriteFile(file, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	base := AppleConfig{Common: Common{ClientID: "com.example.web"}, TeamID: "TEAM123456", KeyID: "KEY1234567"}
	withFile := base
	withFile.PrivateKeyFile = file
	if _, err := NewApple(withFile); err != nil {
		t.Fatalf("a .p8 file: %v", err)
	}
	for name, c := range map[string]struct {
		mod  func(c *AppleConfig)
		want string
	}{
		"no key":      {func(c *AppleConfig) {}, "one of private_key_file"},
		"both keys":   {func(c *AppleConfig) { c.PrivateKey, c.PrivateKeyFile = pem, file }, "one of private_key_file"},
		"a secret":    {func(c *AppleConfig) { c.PrivateKeyFile, c.ClientSecret = file, "s" }, "client_secret is not set for apple"},
		"no team":     {func(c *AppleConfig) { c.PrivateKeyFile, c.TeamID = file, "" }, "team_id and key_id"},
		"not PEM":     {func(c *AppleConfig) { c.PrivateKey = "MIGTAgEA" }, "not PEM"},
		"RSA key":     {func(c *AppleConfig) { c.PrivateKey = rsaPEM(t) }, "not a P-256 key"},
		"missing":     {func(c *AppleConfig) { c.PrivateKeyFile = file + ".gone" }, "private_key_file"},
		"no clientid": {func(c *AppleConfig) { c.PrivateKeyFile, c.ClientID = file, "" }, "client_id is required"},
	} {
		cfg := base
		c.mod(&cfg)
		if _, err := NewApple(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}
