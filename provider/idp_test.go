package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"golang.org/x/oauth2"

	"github.com/convex-auth/caddy-convex-auth/internal/idptest"
)

// The providers against idptest's: the flow as a browser runs it, the
// provider's answer read as signin reads it.

const testCallback = "https://app.example.com/auth/callback/test"

// startIdP runs a provider of kind for the test.
func startIdP(t *testing.T, kind string) *idptest.Server {
	t.Helper()
	s := idptest.Start(kind, "client-"+kind, "secret-"+kind)
	t.Cleanup(s.Close)
	return s
}

// appleKey makes a Sign in with Apple key: the .p8 PEM, and the provider
// checking its signatures.
func appleKey(t *testing.T, s *idptest.Server) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s.AppleTeamID, s.AppleKeyID, s.AppleKey = "TEAM123456", "KEY1234567", &k.PublicKey
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

var formField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// authorize runs the browser's part: the provider's URL, then its answer
// (a redirect to the callback, or Apple's page that posts the form), read
// into the callback's parameters.
func authorize(t *testing.T, p OAuth, f Flow) url.Values {
	t.Helper()
	u, err := p.AuthCodeURL(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusFound:
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		return loc.Query()
	case http.StatusOK:
		params := url.Values{}
		for _, m := range formField.FindAllStringSubmatch(string(body), -1) {
			params.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		return params
	}
	t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	return nil
}

// signIn runs a whole flow and returns who the provider says signed in.
func signIn(t *testing.T, p OAuth) (Identity, error) {
	t.Helper()
	f := Flow{State: "state-" + rand.Text(), Verifier: oauth2.GenerateVerifier(), Nonce: "nonce-" + rand.Text(), RedirectURI: testCallback}
	params := authorize(t, p, f)
	if params.Get("state") != f.State {
		t.Fatalf("the answer's state %q is not the flow's", params.Get("state"))
	}
	return p.Identity(context.Background(), f, Callback{Code: params.Get("code"), Params: params})
}

// mustSignIn is signIn that must succeed.
func mustSignIn(t *testing.T, p OAuth) Identity {
	t.Helper()
	id, err := signIn(t, p)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// refusedBy checks that err is a refusal by rule.
func refusedBy(t *testing.T, err error, rule string) {
	t.Helper()
	r := AsRefusal(err)
	if r == nil || r.Rule != rule {
		t.Fatalf("error %v; want a refusal by %s", err, rule)
	}
}

func mustNew[C any](t *testing.T, build func(C) (OAuth, error), c C) OAuth {
	t.Helper()
	p, err := build(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rsaPEM is a PKCS#8 RSA key, which is no Apple key.
func rsaPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}
