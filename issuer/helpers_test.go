package issuer

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
)

const testIssuer = "https://app.example.com"

// fakeClock is an injectable Config.Now.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock {
	return testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// Raw private keys are generated once per test binary: RSA generation is slow.
var (
	rawKeysOnce sync.Once
	rawRSA      *rsa.PrivateKey
	rawEd25519  ed25519.PrivateKey
	rawP256     *ecdsa.PrivateKey
)

func rawKeys(t testing.TB) (*rsa.PrivateKey, ed25519.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	rawKeysOnce.Do(func() {
		var err error
		if rawRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if _, rawEd25519, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		if rawP256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	return rawRSA, rawEd25519, rawP256
}

func pkcs8PEM(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal PKCS#8: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// testKey returns a Key of the given algorithm, from the shared raw keys.
func testKey(t testing.TB, alg Algorithm) *Key {
	t.Helper()
	rsaKey, edKey, ecKey := rawKeys(t)
	raw := map[Algorithm]any{RS256: rsaKey, EdDSA: edKey, ES256: ecKey}[alg]
	k, err := ParseKey(pkcs8PEM(t, raw), alg)
	if err != nil {
		t.Fatalf("ParseKey(%s): %v", alg, err)
	}
	return k
}

func newTestIssuer(t testing.TB, cfg Config, k *Key) *Issuer {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	iss, err := New(cfg, k)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return iss
}

// verifyToken checks the token with jwx against the issuer's current JWKS, at now.
func verifyToken(t *testing.T, iss *Issuer, token string, now time.Time) jwt.Token {
	t.Helper()
	tok, err := parseWithIssuer(iss, token, now)
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	return tok
}

// parseWithIssuer verifies and validates the token the way a relying party
// configured for iss would: keys from its JWKS, its issuer and audience.
func parseWithIssuer(iss *Issuer, token string, now time.Time) (jwt.Token, error) {
	set, err := jwk.Parse(iss.JWKS())
	if err != nil {
		return nil, err
	}
	cfg := iss.Config()
	return jwt.Parse([]byte(token),
		jwt.WithKeySet(set),
		jwt.WithValidate(true),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
	)
}

// decodeSegment returns one of a compact JWS's segments (0 header, 1 payload) as a JSON object.
func decodeSegment(t *testing.T, token string, n int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[n])
	if err != nil {
		t.Fatalf("segment %d is not base64url: %v", n, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("segment %d is not a JSON object: %v", n, err)
	}
	return m
}

// privateMembers are the JWK members that hold private key material (RFC 7518 6.3.2, 6.2.2; RFC 8037).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// assertPublicOnly fails if any key in the JWKS has a private member or lacks
// a public one.
func assertPublicOnly(t *testing.T, jwks []byte) {
	t.Helper()
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	if len(doc.Keys) == 0 {
		t.Fatalf("JWKS has no keys")
	}
	for _, k := range doc.Keys {
		for _, m := range privateMembers {
			if _, ok := k[m]; ok {
				t.Fatalf("JWKS key %v publishes private member %q", k["kid"], m)
			}
		}
		for _, m := range []string{"kty", "kid", "alg", "use"} {
			if _, ok := k[m]; !ok {
				t.Fatalf("JWKS key %v lacks %q", k["kid"], m)
			}
		}
		if k["use"] != "sig" {
			t.Fatalf("JWKS key %v has use %v, want sig", k["kid"], k["use"])
		}
	}
}

// jwksKIDs lists the kids in a JWKS, in order.
func jwksKIDs(t *testing.T, jwks []byte) []string {
	t.Helper()
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	kids := make([]string, 0, len(doc.Keys))
	for _, k := range doc.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}
