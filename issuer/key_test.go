package issuer

import (
	"cmp"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

func TestParseAlgorithm(t *testing.T) {
	for _, name := range []string{"RS256", "EdDSA", "ES256"} {
		got, err := ParseAlgorithm(name)
		if err != nil || string(got) != name {
			t.Errorf("ParseAlgorithm(%q) = %q, %v; want %q", name, got, err, name)
		}
	}
	for _, name := range []string{"", "rs256", "HS256", "none", "ES384", "eddsa"} {
		_, err := ParseAlgorithm(name)
		if err == nil {
			t.Errorf("ParseAlgorithm(%q) succeeded, want error", name)
			continue
		}
		if !strings.Contains(err.Error(), "RS256, EdDSA, ES256") {
			t.Errorf("ParseAlgorithm(%q) error %q does not list the valid names", name, err)
		}
	}
}

func TestParseKey(t *testing.T) {
	rsaKey, edKey, ecKey := rawKeys(t)
	rsaPEM := pkcs8PEM(t, rsaKey)
	edPEM := pkcs8PEM(t, edKey)
	ecPEM := pkcs8PEM(t, ecKey)

	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	sec1DER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1DER})
	// `openssl ecparam -genkey` writes the curve parameters first.
	ecParams := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}), sec1...)

	// The one-line form generateKeys.mjs prints: newlines as the two characters \n.
	escaped := strings.ReplaceAll(strings.TrimSpace(string(rsaPEM)), "\n", `\n`)
	// Convex Auth's JWT_PRIVATE_KEY: newlines as spaces.
	spaced := strings.ReplaceAll(strings.TrimSpace(string(edPEM)), "\n", " ")

	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	publicDER, err := x509.MarshalPKIXPublicKey(rsaKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	publicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: publicDER})
	encryptedLegacy := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   []byte("not really encrypted"),
	})

	tests := []struct {
		name    string
		text    string
		alg     Algorithm
		wantAlg Algorithm
		wantErr string // substring; "" means success
	}{
		{name: "PKCS8 RSA derives RS256", text: string(rsaPEM), wantAlg: RS256},
		{name: "PKCS8 RSA explicit RS256", text: string(rsaPEM), alg: RS256, wantAlg: RS256},
		{name: "PKCS8 Ed25519 derives EdDSA", text: string(edPEM), wantAlg: EdDSA},
		{name: "PKCS8 P-256 derives ES256", text: string(ecPEM), wantAlg: ES256},
		{name: "PKCS1 RSA", text: string(pkcs1), wantAlg: RS256},
		{name: "SEC1 EC", text: string(sec1), wantAlg: ES256},
		{name: "SEC1 EC after EC PARAMETERS", text: string(ecParams), wantAlg: ES256},
		{name: "escaped one-line form", text: escaped, wantAlg: RS256},
		{name: "escaped one-line form with trailing escape", text: escaped + `\n`, wantAlg: RS256},
		{name: "double-quoted escaped form", text: `"` + escaped + `"`, wantAlg: RS256},
		{name: "single-quoted escaped form with spaces", text: "  '" + escaped + "'\n", wantAlg: RS256},
		{name: "CRLF line endings", text: strings.ReplaceAll(string(ecPEM), "\n", "\r\n"), wantAlg: ES256},
		{name: "escaped CRLF", text: strings.ReplaceAll(strings.TrimSpace(string(ecPEM)), "\n", `\r\n`), wantAlg: ES256},
		{name: "space-separated form", text: `"` + spaced + `"`, wantAlg: EdDSA},
		{name: "surrounding whitespace", text: "\n\t" + string(edPEM) + "\n\n", wantAlg: EdDSA},

		{name: "empty", text: "", wantErr: "no PEM block found"},
		{name: "garbage", text: "this is not a key", wantErr: "no PEM block found"},
		{name: "damaged base64", text: "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", wantErr: "not valid base64"},
		{name: "valid base64 but not a key", text: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", wantErr: `parse "PRIVATE KEY" PEM block`},
		{name: "mismatched markers", text: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", wantErr: "ends as"},
		{name: "public key block", text: string(publicPEM), wantErr: `"PUBLIC KEY" PEM block but signing needs the private key`},
		{name: "certificate block", text: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", wantErr: "signing needs the private key"},
		{name: "unknown block type", text: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----", wantErr: `unsupported PEM block "OPENSSH PRIVATE KEY"`},
		{name: "encrypted PKCS8", text: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----", wantErr: "encrypted PKCS#8 keys are not supported"},
		{name: "encrypted legacy PEM", text: string(encryptedLegacy), wantErr: "has headers"},
		{name: "RSA 1024 rejected", text: string(pkcs8PEM(t, rsa1024)), wantErr: "RSA key has 1024 bits: use a key of at least 2048 bits"},
		{name: "P-384 rejected", text: string(pkcs8PEM(t, p384)), wantErr: "curve P-384 is not supported"},
		{name: "X25519 rejected", text: string(pkcs8PEM(t, x25519)), wantErr: "cannot sign JWTs"},
		{name: "only EC PARAMETERS", text: "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----", wantErr: "holds no private key block"},

		{name: "ES256 for RSA key", text: string(rsaPEM), alg: ES256, wantErr: `algorithm "ES256" does not fit an RSA key: use RS256 or supply a P-256 key`},
		{name: "EdDSA for RSA key", text: string(rsaPEM), alg: EdDSA, wantErr: `algorithm "EdDSA" does not fit an RSA key: use RS256 or supply an Ed25519 key`},
		{name: "RS256 for Ed25519 key", text: string(edPEM), alg: RS256, wantErr: `algorithm "RS256" does not fit an Ed25519 key: use EdDSA or supply an RSA key`},
		{name: "RS256 for P-256 key", text: string(ecPEM), alg: RS256, wantErr: `algorithm "RS256" does not fit a P-256 key: use ES256 or supply an RSA key`},
		{name: "unknown algorithm", text: string(rsaPEM), alg: "PS256", wantErr: `unknown signing algorithm "PS256"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey([]byte(tc.text), tc.alg)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseKey succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "MII") {
					t.Fatalf("error %q looks like it contains key material", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if k.Algorithm() != tc.wantAlg {
				t.Fatalf("algorithm %s, want %s", k.Algorithm(), tc.wantAlg)
			}
		})
	}
}

func TestParseKeyFormsGiveSameKey(t *testing.T) {
	rsaKey, _, _ := rawKeys(t)
	canonical := pkcs8PEM(t, rsaKey)
	want, err := ParseKey(canonical, "")
	if err != nil {
		t.Fatal(err)
	}
	escaped := `"` + strings.ReplaceAll(string(canonical), "\n", `\n`) + `"`
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	for _, text := range []string{escaped, string(pkcs1)} {
		got, err := ParseKey([]byte(text), "")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID() != want.ID() {
			t.Fatalf("kid %s, want %s", got.ID(), want.ID())
		}
	}
}

// RFC 7638 section 3.1's example key and the thumbprint the RFC gives for it.
const (
	rfc7638Key        = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func TestThumbprintMatchesRFC7638Example(t *testing.T) {
	pub, err := jwk.ParseKey([]byte(rfc7638Key))
	if err != nil {
		t.Fatal(err)
	}
	got, err := thumbprintID(pub)
	if err != nil {
		t.Fatal(err)
	}
	if got != rfc7638Thumbprint {
		t.Fatalf("thumbprint %s, want %s", got, rfc7638Thumbprint)
	}
	// The key ID is the same computation over the key's own public JWK.
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		k := testKey(t, alg)
		want, err := thumbprintID(k.PublicJWK())
		if err != nil {
			t.Fatal(err)
		}
		if kid, _ := k.PublicJWK().KeyID(); k.ID() != want || kid != want {
			t.Fatalf("%s: ID %s, JWK kid %s, want thumbprint %s", alg, k.ID(), kid, want)
		}
	}
}

func TestPublicJWK(t *testing.T) {
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		t.Run(string(alg), func(t *testing.T) {
			k := testKey(t, alg)
			pub := k.PublicJWK()
			kid, _ := pub.KeyID()
			pubAlg, _ := pub.Algorithm()
			use, _ := pub.KeyUsage()
			if kid != k.ID() || pubAlg.String() != string(alg) || use != "sig" {
				t.Fatalf("JWK kid %q alg %q use %q; want %q %q sig", kid, pubAlg, use, k.ID(), alg)
			}
			raw, err := json.Marshal(pub)
			if err != nil {
				t.Fatal(err)
			}
			assertPublicOnly(t, append(append([]byte(`{"keys":[`), raw...), "]}"...))
			// A copy: changing it does not change the key.
			if err := pub.Set(jwk.KeyIDKey, "changed"); err != nil {
				t.Fatal(err)
			}
			if kid, _ := k.PublicJWK().KeyID(); kid != k.ID() {
				t.Fatalf("PublicJWK returned shared state")
			}
		})
	}
}

func TestGenerateKeyRoundTrip(t *testing.T) {
	for _, alg := range []Algorithm{"", RS256, EdDSA, ES256} {
		t.Run(cmp.Or(string(alg), "default"), func(t *testing.T) {
			k, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			want := alg
			if want == "" {
				want = RS256
			}
			if k.Algorithm() != want {
				t.Fatalf("algorithm %s, want %s", k.Algorithm(), want)
			}
			if pub, ok := k.signer.Public().(*rsa.PublicKey); ok && pub.N.BitLen() != GeneratedRSABits {
				t.Fatalf("RSA key has %d bits, want %d", pub.N.BitLen(), GeneratedRSABits)
			}
			pemBytes, err := k.MarshalPKCS8PEM()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----\n") {
				t.Fatalf("not a PKCS#8 PEM")
			}
			back, err := ParseKey(pemBytes, want)
			if err != nil {
				t.Fatal(err)
			}
			if back.ID() != k.ID() {
				t.Fatalf("kid after round trip %s, want %s", back.ID(), k.ID())
			}
		})
	}
	if _, err := GenerateKey("HS256"); err == nil {
		t.Fatal("GenerateKey(HS256) succeeded, want error")
	}
}
