package issuer

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var benchClaims = Claims{
	UserID:        "k17a2b3c4d5e6f7g8h9j0k1m2n3p4q5r",
	SessionID:     "s_0123456789abcdef0123456789abcdef",
	Email:         "ada@example.com",
	EmailVerified: true,
	Name:          "Ada Lovelace",
	Picture:       "https://avatars.example.com/u/12345?v=4",
}

func BenchmarkMint(b *testing.B) {
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		b.Run(string(alg), func(b *testing.B) {
			iss := newTestIssuer(b, Config{}, testKey(b, alg))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := iss.Mint(benchClaims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSign is the floor under BenchmarkMint: the signature alone over a
// signing input of a typical size. Mint's own cost is the difference.
func BenchmarkSign(b *testing.B) {
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		b.Run(string(alg), func(b *testing.B) {
			iss := newTestIssuer(b, Config{}, testKey(b, alg))
			token, _, _, err := iss.Mint(benchClaims)
			if err != nil {
				b.Fatal(err)
			}
			input := []byte(token[:strings.LastIndexByte(token, '.')])
			sk := iss.keys.Load().signing
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sk.sign(input); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMintParallel(b *testing.B) {
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		b.Run(string(alg), func(b *testing.B) {
			iss := newTestIssuer(b, Config{}, testKey(b, alg))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, _, err := iss.Mint(benchClaims); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkServeJWKS(b *testing.B) {
	iss := newTestIssuer(b, Config{}, testKey(b, RS256))
	if err := iss.SetKeys(testKey(b, RS256), testKey(b, EdDSA), nil); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
	b.ReportAllocs()
	for b.Loop() {
		iss.ServeJWKS(httptest.NewRecorder(), req)
	}
}
