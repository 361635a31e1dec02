package issuer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

func TestKeygenPEM(t *testing.T) {
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		t.Run(string(alg), func(t *testing.T) {
			var out bytes.Buffer
			// Lower case is accepted too.
			if err := Keygen(&out, KeygenOptions{Algorithm: strings.ToLower(string(alg))}); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), "-----BEGIN PRIVATE KEY-----\n") || !strings.HasSuffix(out.String(), "-----END PRIVATE KEY-----\n") {
				t.Fatalf("not a PKCS#8 PEM block:\n%s", out.String())
			}
			key, err := ParseKey(out.Bytes(), alg)
			if err != nil {
				t.Fatalf("the printed key does not load as %s: %v", alg, err)
			}
			if key.Algorithm() != alg {
				t.Fatalf("algorithm %s, want %s", key.Algorithm(), alg)
			}
		})
	}
}

func TestKeygenEnvWithJWKS(t *testing.T) {
	var out bytes.Buffer
	if err := Keygen(&out, KeygenOptions{Algorithm: "ES256", Format: "env", JWKS: true}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two lines (key, JWKS), got:\n%s", out.String())
	}
	value, ok := strings.CutPrefix(lines[0], `CONVEX_AUTH_PRIVATE_KEY="-----BEGIN PRIVATE KEY-----\n`)
	if !ok || !strings.HasSuffix(value, `\n-----END PRIVATE KEY-----"`) {
		t.Fatalf("first line is not the one-line key variable: %s", lines[0])
	}
	// What a .env loader or `export` leaves in the variable: the quoted text.
	_, quoted, _ := strings.Cut(lines[0], "=")
	key, err := ParseKey([]byte(quoted), ES256)
	if err != nil {
		t.Fatalf("the variable's value does not load: %v", err)
	}
	jwksText, ok := strings.CutPrefix(lines[1], "CONVEX_AUTH_JWKS='")
	if !ok || !strings.HasSuffix(jwksText, "'") {
		t.Fatalf("second line is not the JWKS variable: %s", lines[1])
	}
	set, err := jwk.Parse([]byte(strings.TrimSuffix(jwksText, "'")))
	if err != nil {
		t.Fatal(err)
	}
	assertPublicJWKSOf(t, set, key)
}

func TestKeygenPEMWithJWKSStaysAKeyFile(t *testing.T) {
	var out bytes.Buffer
	if err := Keygen(&out, KeygenOptions{JWKS: true}); err != nil {
		t.Fatal(err)
	}
	key, err := ParseKey(out.Bytes(), "")
	if err != nil || key.Algorithm() != RS256 {
		t.Fatalf("the output with --jwks is not an RS256 key file: %v", err)
	}
	_, jwksText, _ := strings.Cut(out.String(), "-----END PRIVATE KEY-----\n")
	set, err := jwk.Parse([]byte(jwksText))
	if err != nil {
		t.Fatalf("no JWKS after the key: %v", err)
	}
	assertPublicJWKSOf(t, set, key)
}

// assertPublicJWKSOf checks that set holds key's public half only, with its kid.
func assertPublicJWKSOf(t *testing.T, set jwk.Set, key *Key) {
	t.Helper()
	if set.Len() != 1 {
		t.Fatalf("JWKS has %d keys, want 1", set.Len())
	}
	k, _ := set.Key(0)
	kid, _ := k.KeyID()
	alg, _ := k.Algorithm()
	if kid != key.ID() || alg.String() != string(key.Algorithm()) {
		t.Fatalf("JWKS key kid=%q alg=%q, want %q %q", kid, alg, key.ID(), key.Algorithm())
	}
	raw, _ := json.Marshal(k)
	for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`} {
		if bytes.Contains(raw, []byte(private+":")) {
			t.Fatalf("JWKS holds private member %s", private)
		}
	}
}

func TestKeygenErrors(t *testing.T) {
	tests := []struct {
		opts    KeygenOptions
		wantErr string
	}{
		{KeygenOptions{Algorithm: "HS256"}, "--alg"},
		{KeygenOptions{Format: "json"}, `--format "json" is unknown: use pem or env`},
		{KeygenOptions{Format: "env", EnvName: "MY-KEY"}, "--env-name"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := Keygen(&out, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Keygen(%+v) = %v, want an error containing %q", tt.opts, err, tt.wantErr)
		}
		if out.Len() != 0 {
			t.Errorf("Keygen(%+v) printed something despite the error", tt.opts)
		}
	}
}

func TestKeygenToFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convex.pem")
	if err := KeygenToFile(path, KeygenOptions{Algorithm: "EdDSA"}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", info.Mode(), err)
	}
	before, _ := os.ReadFile(path)
	err = KeygenToFile(path, KeygenOptions{})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second keygen to the same file: %v, want an already-exists error", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("an existing key file was changed")
	}
}
