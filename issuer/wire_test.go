package issuer

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateWire = flag.Bool("update", false, "rewrite the golden files under testdata/wire")

// wireIssuer is the issuer string of the pinned documents.
const wireIssuer = "https://app.example.com/tenant"

// wireClaims are the claims of the pinned tokens: every optional claim set.
var wireClaims = Claims{
	UserID:        "k17a2b3c4d5e6f7g8h9j0k1m2n3p4q5r",
	SessionID:     "s_0123456789abcdef0123456789abcdef",
	Email:         "ada@example.com",
	EmailVerified: true,
	Name:          "Ada <Lovelace> & co",
	Picture:       "https://avatars.example.com/u/12345?v=4",
}

// wireKey reads one of the fixed test keys under testdata/wire (made for
// this test only, never used anywhere else).
func wireKey(t *testing.T, alg Algorithm) *Key {
	t.Helper()
	pemText, err := os.ReadFile(filepath.Join("testdata", "wire", strings.ToLower(string(alg))+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(pemText, alg)
	if err != nil {
		t.Fatalf("ParseKey(%s): %v", alg, err)
	}
	return k
}

// TestWireFormatPinned pins, byte for byte, what relying parties see for
// fixed keys: the JWKS and discovery documents (one key each, and all three
// during a rotation), the static auth.config.ts with its embedded JWKS, and
// the tokens. RS256 (PKCS #1 v1.5) and Ed25519 signatures are deterministic,
// so those tokens are pinned whole; ES256's signature is random, so its
// header and payload are pinned and the token verified. A change of JOSE
// library or of the encoding shows up here as a diff.
func TestWireFormatPinned(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	cfg := Config{Issuer: wireIssuer, Subject: SubjectUserSession, Now: clock}
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		name := strings.ToLower(string(alg))
		t.Run(string(alg), func(t *testing.T) {
			k := wireKey(t, alg)
			iss := newTestIssuer(t, cfg, k)
			checkWire(t, "jwks-"+name+".json", iss.JWKS())
			checkWire(t, "discovery-"+name+".json", iss.Discovery())
			pub, err := json.Marshal(k.PublicJWK())
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, "jwks-"+name+".json", []byte(`{"keys":[`+string(pub)+`]}`))

			token, _, _, err := iss.Mint(wireClaims)
			if err != nil {
				t.Fatal(err)
			}
			verifyToken(t, iss, token, now)
			if alg == ES256 {
				token = token[:strings.LastIndexByte(token, '.')]
			}
			checkWire(t, "token-"+name+".txt", []byte(token))
		})
	}

	t.Run("rotation", func(t *testing.T) {
		iss := newTestIssuer(t, cfg, wireKey(t, RS256))
		retired := []RetiredKey{{Key: wireKey(t, ES256), RetiredAt: now}}
		if err := iss.SetKeys(wireKey(t, RS256), wireKey(t, EdDSA), retired); err != nil {
			t.Fatal(err)
		}
		checkWire(t, "jwks-rotation.json", iss.JWKS())
		checkWire(t, "discovery-rotation.json", iss.Discovery())
	})

	t.Run("static_auth_config", func(t *testing.T) {
		providers := []ConvexProvider{
			{Issuer: wireIssuer, ApplicationID: "convex", Algorithm: ES256, Keys: []*Key{wireKey(t, ES256), wireKey(t, RS256)}},
			{Issuer: "https://other.example.com", ApplicationID: "app", Algorithm: RS256, Keys: []*Key{wireKey(t, RS256)}},
		}
		out, err := AuthConfig(providers, "Caddyfile", true)
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, "auth.config.static.ts", []byte(out))
	})
}

// checkWire compares got with testdata/wire/name, or writes it with -update.
func checkWire(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "wire", name)
	if *updateWire {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./issuer -run TestWireFormatPinned -update once to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed on the wire:\n got: %s\nwant: %s", name, got, want)
	}
}
