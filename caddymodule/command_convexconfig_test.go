package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

func convexConfig(t *testing.T, opts ConvexConfigOptions) (string, string, error) {
	t.Helper()
	var out, warn bytes.Buffer
	err := ConvexConfig(context.Background(), &out, &warn, opts)
	return out.String(), warn.String(), err
}

func TestConvexConfigOIDCFormFindsEveryHandler(t *testing.T) {
	path := writeCaddyfile(t, `
app.example.com {
	convex_auth {
		issuer https://app.example.com
	}
	reverse_proxy 127.0.0.1:3000
}
other.example.com {
	handle /api/* {
		convex_auth {
			issuer https://other.example.com/tenant
			application_id other-app
			algorithm EdDSA
		}
		reverse_proxy 127.0.0.1:3001
	}
	# The same issuer twice makes one provider.
	handle {
		convex_auth {
			issuer https://other.example.com/tenant
			application_id other-app
			algorithm EdDSA
		}
		respond "hi"
	}
}
`)
	out, warn, err := convexConfig(t, ConvexConfigOptions{ConfigFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if warn != "" {
		t.Errorf("unexpected notes: %s", warn)
	}
	want := `// convex/auth.config.ts, printed by ` + "`caddy convex-auth convex-config`" + `
// for the convex_auth gateway configured in Caddyfile. Convex fetches
// <domain>/.well-known/openid-configuration and the JWKS it names, and
// accepts tokens whose iss equals domain and whose aud equals applicationID.
import type { AuthConfig } from "convex/server";

export default {
  providers: [
    {
      domain: "https://app.example.com",
      applicationID: "convex",
    },
    {
      domain: "https://other.example.com/tenant",
      applicationID: "other-app",
    },
  ],
} satisfies AuthConfig;
`
	if out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
}

// staticProvider is one customJwt entry read back from the generated file.
type staticProvider struct {
	issuer, algorithm, applicationID string
	jwks                             jwk.Set
}

var staticEntry = regexp.MustCompile(`(?s)\{\s*type: "customJwt",\s*issuer: "([^"]+)",\s*jwks: "([^"]+)",\s*algorithm: "([^"]+)",\s*applicationID: "([^"]+)",\s*\}`)

func parseStaticConfig(t *testing.T, out string) []staticProvider {
	t.Helper()
	var ps []staticProvider
	for _, m := range staticEntry.FindAllStringSubmatch(out, -1) {
		b64, ok := strings.CutPrefix(m[2], "data:text/plain;charset=utf-8;base64,")
		if !ok {
			t.Fatalf("jwks is not the documented data: URI: %s", m[2])
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		set, err := jwk.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, staticProvider{issuer: m[1], jwks: set, algorithm: m[3], applicationID: m[4]})
	}
	if len(ps) == 0 {
		t.Fatalf("no customJwt provider in:\n%s", out)
	}
	return ps
}

// assertVerifies mints a token with key and verifies it the way Convex's
// customJwt path would: against the embedded JWKS, with iss and aud.
func assertVerifies(t *testing.T, p staticProvider, key *issuer.Key) {
	t.Helper()
	iss, err := issuer.New(issuer.Config{Issuer: p.issuer, Audience: p.applicationID}, key)
	if err != nil {
		t.Fatal(err)
	}
	token, _, _, err := iss.Mint(issuer.Claims{UserID: "user_1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse([]byte(token), jwt.WithKeySet(p.jwks), jwt.WithValidate(true),
		jwt.WithIssuer(p.issuer), jwt.WithAudience(p.applicationID)); err != nil {
		t.Fatalf("a token of the gateway's key does not verify with the embedded JWKS: %v", err)
	}
	k, _ := p.jwks.Key(0)
	if alg, _ := k.Algorithm(); alg.String() != p.algorithm {
		t.Fatalf("embedded key alg %s, provider algorithm %s", alg, p.algorithm)
	}
}

func TestConvexConfigStaticFromKeyFile(t *testing.T) {
	for _, alg := range []issuer.Algorithm{issuer.RS256, issuer.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			keyPath, key := writeKeyFile(t, alg)
			path := writeCaddyfile(t, `app.example.com {
	convex_auth {
		issuer https://app.example.com
		signing_key file `+keyPath+`
	}
}`)
			out, _, err := convexConfig(t, ConvexConfigOptions{ConfigFile: path, Static: true})
			if err != nil {
				t.Fatal(err)
			}
			ps := parseStaticConfig(t, out)
			if len(ps) != 1 || ps[0].issuer != "https://app.example.com" || ps[0].algorithm != string(alg) || ps[0].applicationID != "convex" {
				t.Fatalf("providers %+v", ps)
			}
			assertJWKSHolds(t, ps[0].jwks, key)
			assertVerifies(t, ps[0], key)
		})
	}
}

func TestConvexConfigStaticFromEnv(t *testing.T) {
	var env bytes.Buffer
	if err := issuer.Keygen(&env, issuer.KeygenOptions{Format: "env", EnvName: "TEST_CONVEX_KEY"}); err != nil {
		t.Fatal(err)
	}
	_, value, _ := strings.Cut(strings.TrimSpace(env.String()), "=")
	t.Setenv("TEST_CONVEX_KEY", value)
	key, err := issuer.ParseKey([]byte(value), "")
	if err != nil {
		t.Fatal(err)
	}
	path := writeCaddyfile(t, `app.example.com {
	convex_auth {
		issuer https://app.example.com
		application_id my-app
		signing_key env TEST_CONVEX_KEY
	}
}`)
	out, _, err := convexConfig(t, ConvexConfigOptions{ConfigFile: path, Static: true})
	if err != nil {
		t.Fatal(err)
	}
	ps := parseStaticConfig(t, out)
	assertJWKSHolds(t, ps[0].jwks, key)
	assertVerifies(t, ps[0], key)
}

// TestConvexConfigStaticFromStorage reads the key a gateway generated into
// the storage named by the config's storage option (ES256: the generated
// default, EdDSA, is refused by the static form).
func TestConvexConfigStaticFromStorage(t *testing.T) {
	storageDir := t.TempDir()
	config := `{
	storage file_system ` + storageDir + `
}
app.example.com {
	convex_auth {
		issuer https://app.example.com/
		algorithm ES256
	}
}`
	path := writeCaddyfile(t, config)

	_, _, err := convexConfig(t, ConvexConfigOptions{ConfigFile: path, Static: true})
	if !errors.Is(err, issuer.ErrKeyNotFound) {
		t.Fatalf("before any key exists: %v, want one wrapping issuer.ErrKeyNotFound", err)
	}
	for _, want := range []string{"no generated key is in Caddy's storage", storageDir, "start Caddy once", "signing_key file|env"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("before any key exists: %v, want an error containing %q", err, want)
		}
	}

	// What the gateway does at its first start.
	st := certmagicKeyStorage{&certmagic.FileStorage{Path: storageDir}}
	kr, err := issuer.LoadOrCreateKeyring(context.Background(), st, keyringName("https://app.example.com/", issuer.ES256), issuer.ES256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key := kr.Current
	out, _, err := convexConfig(t, ConvexConfigOptions{ConfigFile: path, Static: true})
	if err != nil {
		t.Fatal(err)
	}
	ps := parseStaticConfig(t, out)
	if ps[0].issuer != "https://app.example.com/" || ps[0].algorithm != "ES256" {
		t.Fatalf("providers %+v", ps)
	}
	assertJWKSHolds(t, ps[0].jwks, key)
	assertVerifies(t, ps[0], key)
}

func TestConvexConfigRefusesWhatConvexRefuses(t *testing.T) {
	esKey, _ := writeKeyFile(t, issuer.ES256)
	edKey, _ := writeKeyFile(t, issuer.EdDSA)
	site := func(lines string) string {
		return "app.example.com {\n\tconvex_auth {\n\t\tissuer https://app.example.com\n\t\t" + lines + "\n\t}\n}\n"
	}
	tests := []struct {
		name    string
		config  string
		static  bool
		wantErr []string
	}{
		{"ES256 key in the OIDC form", site("signing_key file " + esKey), false,
			[]string{"signs with ES256", "OIDC form does not accept", "--static", "keygen --alg RS256"}},
		{"ES256 option in the OIDC form", site("algorithm ES256"), false,
			[]string{"signs with ES256", "--static"}},
		{"EdDSA key in the customJwt form", site("signing_key file " + edKey), true,
			[]string{"signs with EdDSA", "customJwt form does not accept", "drop --static", "keygen --alg ES256"}},
		{"generated key (EdDSA by default) in the customJwt form", site("application_id convex"), true,
			[]string{"generated EdDSA key", "customJwt form does not accept", "set `algorithm ES256`", "drop --static"}},
		{"generated key with algorithm EdDSA in the customJwt form", site("algorithm EdDSA"), true,
			[]string{"generated EdDSA key", "set `algorithm ES256`"}},
		{"unreadable key file with --static", site("signing_key file /nonexistent/key.pem"), true,
			[]string{"signing_key file /nonexistent/key.pem cannot be read"}},
		{"unset env with --static", site("signing_key env CONVEX_AUTH_TEST_UNSET_VARIABLE"), true,
			[]string{"signing_key env CONVEX_AUTH_TEST_UNSET_VARIABLE is not set"}},
		{"no convex_auth", "app.example.com {\n\trespond hi\n}\n", false,
			[]string{"has no convex_auth handler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := convexConfig(t, ConvexConfigOptions{ConfigFile: writeCaddyfile(t, tt.config), Static: tt.static})
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want it to contain %q", err, want)
				}
			}
			if out != "" {
				t.Fatalf("printed a config despite the error:\n%s", out)
			}
		})
	}
}

// TestConvexConfigOIDCNotesUnreadableKey: the OIDC form needs no key, so an
// unreadable one is a note, not an error.
func TestConvexConfigOIDCNotesUnreadableKey(t *testing.T) {
	path := writeCaddyfile(t, "app.example.com {\n\tconvex_auth {\n\t\tissuer https://app.example.com\n\t\tsigning_key env CONVEX_AUTH_TEST_UNSET_VARIABLE\n\t}\n}\n")
	out, warn, err := convexConfig(t, ConvexConfigOptions{ConfigFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `domain: "https://app.example.com"`) {
		t.Fatalf("output:\n%s", out)
	}
	if !strings.Contains(warn, "could not be checked") || !strings.Contains(warn, "RS256 and EdDSA") {
		t.Fatalf("notes: %q", warn)
	}
}

func TestConvexConfigReadsJSON(t *testing.T) {
	keyPath, key := writeKeyFile(t, issuer.RS256)
	cfg := `{"apps":{"http":{"servers":{"srv0":{"listen":[":443"],"routes":[{"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"convex_auth","issuer":"https://json.example.com","signing_key":{"from":"file","path":"` + keyPath + `"}}]}]}]}]}}}}}`
	path := filepath.Join(t.TempDir(), "caddy.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := convexConfig(t, ConvexConfigOptions{ConfigFile: path, Static: true})
	if err != nil {
		t.Fatal(err)
	}
	ps := parseStaticConfig(t, out)
	if ps[0].issuer != "https://json.example.com" {
		t.Fatalf("providers %+v", ps)
	}
	assertVerifies(t, ps[0], key)
}

// assertJWKSHolds checks that set holds key alone, by kid and algorithm.
func assertJWKSHolds(t *testing.T, set jwk.Set, key *issuer.Key) {
	t.Helper()
	k, ok := set.Key(0)
	var kid, alg string
	if ok {
		kid, _ = k.KeyID()
		a, _ := k.Algorithm()
		alg = a.String()
	}
	if set.Len() != 1 || !ok || kid != key.ID() || alg != string(key.Algorithm()) {
		t.Fatalf("JWKS holds %d keys, first %v; want only %s (%s)", set.Len(), k, key.ID(), key.Algorithm())
	}
}
