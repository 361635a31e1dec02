package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateNamesBadOption runs `caddy validate` on bad configs: each must
// fail and name the option at fault.
func TestValidateNamesBadOption(t *testing.T) {
	bin := caddyBin(t)
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	edKey := filepath.Join(dir, "ed25519.pem")
	if err := os.WriteFile(edKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, block, want string
	}{
		{"missing issuer", "application_id convex", "issuer is required"},
		{"issuer not a URL", "issuer app.example.com", `issuer "app.example.com" is not an http(s) URL`},
		{"unreadable key", "issuer https://app.example.com\nsigning_key file " + filepath.Join(dir, "missing.pem"), "signing_key file " + filepath.Join(dir, "missing.pem") + " cannot be read"},
		{"unset key variable", "issuer https://app.example.com\nsigning_key env CONVEX_AUTH_TEST_UNSET_KEY", "signing_key env CONVEX_AUTH_TEST_UNSET_KEY is not set"},
		{"key and algorithm mismatch", "issuer https://app.example.com\nsigning_key file " + edKey + "\nalgorithm RS256", "signing_key file " + edKey},
		{"short token_ttl", "issuer https://app.example.com\ntoken_ttl 10s", "token_ttl 10s is under the 30s minimum"},
		{"unknown subdirective", "issuer https://app.example.com\nprotekt /x", `unknown subdirective "protekt"`},
		{"oidc provider without issuer", "issuer https://app.example.com\nprovider oidc okta {\nclient_id a\nclient_secret b\n}", "provider okta: oidc needs a name and an issuer"},
		{"unset client secret variable", "issuer https://app.example.com\nprovider github {\nclient_id a\nclient_secret {env.CONVEX_AUTH_TEST_UNSET_SECRET}\n}", "client_id or client_secret is empty after replacing placeholders"},
		{"short admin_api secret", "issuer https://app.example.com\nadmin_api {\nsecret too-short-a-secret\n}", "admin_api secret is 18 bytes, it must be at least 32"},
		{"unset admin_api secret variable", "issuer https://app.example.com\nadmin_api {\nsecret {env.CONVEX_AUTH_TEST_UNSET_SECRET}\n}", "admin_api secret is 0 bytes"},
		{"unknown protect criterion", "issuer https://app.example.com\nprotect /admin* {\nallow group admins\n}", `protect /admin*: allow: unknown criterion "group"`},
		{"claim rule without claims", "issuer https://app.example.com\nprotect /admin* {\nallow claim role admin\n}", "protect /admin* reads claims (claim …), but there is no claims block"},
		{"claims without query", "issuer https://app.example.com\nclaims {\nconvex_url https://x.convex.cloud\n}", "claims: query is required"},
		{"apple key file missing", "issuer https://app.example.com\nprovider apple {\nclient_id com.example.web\nteam_id ABCDE12345\nkey_id KEY1234567\nprivate_key_file " + filepath.Join(dir, "AuthKey.p8") + "\n}", "provider apple: private_key_file"},
		{"microsoft tenant a domain", "issuer https://app.example.com\nprovider microsoft {\nclient_id a\nclient_secret b\ntenant contoso.com\n}", `tenant "contoso.com" is not common, organizations, consumers or a tenant ID`},
		{"github team without org", "issuer https://app.example.com\nprovider github {\nclient_id a\nclient_secret b\nallowed_teams platform\n}", `allowed_teams: "platform" is not <org>/<team-slug>`},
		{"passkey user_verification", "issuer https://app.example.com\nprovider password\nprovider passkey {\nuser_verification always\n}", `user_verification "always" is unknown`},
		{"unset factor key variable", "issuer https://app.example.com\nprovider password\nsecond_factor {\nkey env CONVEX_AUTH_TEST_UNSET_KEY\n}", "second_factor key env CONVEX_AUTH_TEST_UNSET_KEY is not set"},
		{"passkey alone", "issuer https://app.example.com\nprovider passkey", "provider passkey needs another sign-in method"},
		{"unreadable sign-in template", "issuer https://app.example.com\nprovider password\nsign_in_template " + filepath.Join(dir, "missing.html"), "sign_in_template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "Caddyfile")
			config := "{\n\tadmin off\n}\nhttp://localhost:1 {\n\tconvex_auth {\n" + tt.block + "\n\t}\n\trespond ok\n}\n"
			if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "validate", "--config", file, "--adapter", "caddyfile")
			cmd.Env = isolatedEnv(t.TempDir())
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("caddy validate accepted the config:\n%s", out)
			}
			// Caddy logs JSON, so quotes in the message come escaped.
			if !strings.Contains(strings.ReplaceAll(string(out), `\"`, `"`), tt.want) {
				t.Fatalf("caddy validate output does not name the problem %q:\n%s", tt.want, out)
			}
		})
	}
	t.Run("good config", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "Caddyfile")
		config := "{\n\tadmin off\n}\nhttp://localhost:1 {\n\tconvex_auth {\n\t\tissuer https://app.example.com\n\t\tsigning_key file " + edKey + "\n\t}\n\trespond ok\n}\n"
		if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "validate", "--config", file, "--adapter", "caddyfile")
		cmd.Env = isolatedEnv(t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Valid configuration") {
			t.Fatalf("caddy validate: %v\n%s", err, out)
		}
	})
}
