package provider

import (
	"reflect"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	client := Common{ClientID: "id", ClientSecret: "secret"}
	for name, c := range map[string]struct {
		validate func() error
		want     string // "" accepts
	}{
		"github":                 {GitHubConfig{Common: client}.Validate, ""},
		"github placeholders":    {GitHubConfig{Common: Common{ClientID: "{env.ID}", ClientSecret: "{env.SECRET}", AuthURL: "{env.AUTH_URL}"}}.Validate, ""},
		"github no secret":       {GitHubConfig{Common: Common{ClientID: "id"}}.Validate, "client_id and client_secret are required"},
		"github bad api_url":     {GitHubConfig{Common: client, APIURL: "ghe.example.com/api/v3"}.Validate, `api_url "ghe.example.com/api/v3" is not an http(s) URL`},
		"github bad token_url":   {GitHubConfig{Common: Common{ClientID: "id", ClientSecret: "s", TokenURL: "ftp://x"}}.Validate, "token_url"},
		"github bad name":        {GitHubConfig{Common: Common{Name: "Work", ClientID: "id", ClientSecret: "s"}}.Validate, `provider name "Work" may hold only`},
		"google":                 {GoogleConfig{OIDCConfig{Common: client}}.Validate, ""},
		"google bad issuer":      {GoogleConfig{OIDCConfig{Common: client, Issuer: "accounts.google.com"}}.Validate, "issuer"},
		"oidc":                   {OIDCConfig{Common: Common{Name: "okta", ClientID: "id", ClientSecret: "s"}, Issuer: "https://example.okta.com"}.Validate, ""},
		"oidc without a name":    {OIDCConfig{Common: client, Issuer: "https://example.okta.com"}.Validate, "oidc needs a name and an issuer"},
		"oidc without an issuer": {OIDCConfig{Common: Common{Name: "okta", ClientID: "id", ClientSecret: "s"}}.Validate, "oidc needs a name and an issuer"},
		"oidc bad jwks_url":      {OIDCConfig{Common: Common{Name: "okta", ClientID: "id", ClientSecret: "s"}, Issuer: "https://x.example", JWKSURL: "keys"}.Validate, "jwks_url"},
	} {
		err := c.validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}

// TestInfo: each type's defaults for its name, label and logo.
func TestInfo(t *testing.T) {
	client := Common{ClientID: "id", ClientSecret: "secret"}
	gh, err := NewGitHub(GitHubConfig{Common: client})
	if err != nil {
		t.Fatal(err)
	}
	google, err := NewGoogle(GoogleConfig{OIDCConfig{Common: client}})
	if err != nil {
		t.Fatal(err)
	}
	okta, err := NewOIDC(OIDCConfig{Common: Common{Name: "okta", ClientID: "id", ClientSecret: "s", RedirectURL: "https://app.example.com/cb"}, Issuer: "https://example.okta.com"})
	if err != nil {
		t.Fatal(err)
	}
	work, err := NewGoogle(GoogleConfig{OIDCConfig{Common: Common{Name: "work", Label: "Work", ClientID: "id", ClientSecret: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got, want Info
	}{
		{gh.Info(), Info{Name: "github", Label: "GitHub", Kind: KindGitHub}},
		{google.Info(), Info{Name: "google", Label: "Google", Kind: KindGoogle}},
		{okta.Info(), Info{Name: "okta", Label: "okta", Kind: KindOIDC, RedirectURL: "https://app.example.com/cb"}},
		{work.Info(), Info{Name: "work", Label: "Work", Kind: KindGoogle}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("Info() = %+v; want %+v", c.got, c.want)
		}
	}
	if _, err := NewOIDC(OIDCConfig{Common: client}); err == nil || !strings.HasPrefix(err.Error(), "provider oidc: ") {
		t.Errorf("NewOIDC without a name: %v; want an error naming the provider", err)
	}
}
