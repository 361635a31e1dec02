package provider_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// TestStepUpAsksForANewSignIn: an OIDC provider asked to re-authenticate
// sends prompt=login and max_age=0 and reports the sign-in's time; GitHub
// cannot be asked.
func TestStepUpAsksForANewSignIn(t *testing.T) {
	const callback = "http://site.example/auth/callback/zitadel"
	op := signintest.StartOP(t, callback)
	p, err := provider.NewOIDC(provider.OIDCConfig{Common: provider.Common{Name: "zitadel", ClientID: op.ClientID, ClientSecret: op.Secret}, Issuer: op.Issuer})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Info().StepUp {
		t.Fatal("an OIDC provider says it cannot re-authenticate")
	}
	gh, err := provider.NewGitHub(provider.GitHubConfig{Common: provider.Common{ClientID: "id", ClientSecret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if gh.Info().StepUp {
		t.Fatal("GitHub says it can re-authenticate")
	}

	ctx := context.Background()
	f := provider.Flow{State: "state-123", Verifier: "verifier-0123456789012345678901234567890123", Nonce: "nonce-1", RedirectURI: callback, ForceLogin: true}
	authURL, err := p.AuthCodeURL(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	if q := u.Query(); q.Get("prompt") != "login" || q.Get("max_age") != "0" {
		t.Fatalf("a step-up's authorization URL %s lacks prompt=login and max_age=0", authURL)
	}
	plain, _ := p.AuthCodeURL(ctx, provider.Flow{State: "s", Verifier: f.Verifier, Nonce: "n", RedirectURI: callback})
	if u, _ := url.Parse(plain); u.Query().Has("prompt") || u.Query().Has("max_age") {
		t.Fatalf("a sign-in's authorization URL asks for a new sign-in: %s", plain)
	}

	before := time.Now().Add(-time.Second).Truncate(time.Second)
	back, err := url.Parse(op.SignIn(signintest.NewBrowser(t), authURL))
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Identity(ctx, f, provider.Callback{Code: back.Query().Get("code"), Params: back.Query()})
	if err != nil {
		t.Fatal(err)
	}
	if id.AuthTime.Before(before) || id.AuthTime.After(time.Now().Add(time.Second)) {
		t.Fatalf("auth_time %v; want the sign-in's time (after %v)", id.AuthTime, before)
	}
}
