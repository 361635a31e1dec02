package issuer

import (
	"strings"
	"testing"
)

func TestMintAppendsCustomClaims(t *testing.T) {
	clock := newFakeClock()
	iss := newTestIssuer(t, Config{Now: clock.Now}, testKey(t, EdDSA))
	token, _, _, err := iss.Mint(Claims{UserID: "u1", SessionID: "s1", Email: "ada@example.com", EmailVerified: true,
		Custom: []byte(`"orgs":["o1","o2"],"role":"admin"`)})
	if err != nil {
		t.Fatal(err)
	}
	payload := decodeSegment(t, token, 1)
	if payload["role"] != "admin" || len(payload["orgs"].([]any)) != 2 || payload["sub"] != "u1" || payload["email"] != "ada@example.com" {
		t.Fatalf("payload %v", payload)
	}
	verifyToken(t, iss, token, clock.Now())
	// The pooled buffer does not carry them into the next token.
	plain, _, _, err := iss.Mint(Claims{UserID: "u2"})
	if err != nil {
		t.Fatal(err)
	}
	if p := decodeSegment(t, plain, 1); p["role"] != nil || p["orgs"] != nil {
		t.Fatalf("custom claims leaked into another token: %v", p)
	}
}

func TestTokenClaimsChooseTheProfile(t *testing.T) {
	full := Claims{UserID: "u1", Email: "ada@example.com", EmailVerified: true, Name: "Ada", Picture: "https://example.com/a.png"}
	for _, tc := range []struct {
		names []string
		want  []string
	}{
		{nil, []string{"email", "email_verified", "name", "picture"}},
		{[]string{"email", "email_verified"}, []string{"email", "email_verified"}},
		{[]string{"email"}, []string{"email"}},
		{[]string{"name"}, []string{"name"}},
		{[]string{"none"}, nil},
	} {
		iss := newTestIssuer(t, Config{ProfileClaims: tc.names}, testKey(t, EdDSA))
		token, _, _, err := iss.Mint(full)
		if err != nil {
			t.Fatal(err)
		}
		payload := decodeSegment(t, token, 1)
		for _, name := range ProfileClaimNames {
			_, has := payload[name]
			want := false
			for _, w := range tc.want {
				want = want || w == name
			}
			if has != want {
				t.Errorf("token_claims %v: %s present %v, want %v (%v)", tc.names, name, has, want, payload)
			}
		}
	}
}

func TestParseProfileClaimsNamesTheMistake(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"email", "role"}, `"role" is not a profile claim`},
		{[]string{"email", "email"}, "twice"},
		{[]string{"none", "email"}, `"none" is not a profile claim`},
	} {
		if _, err := ParseProfileClaims(tc.names); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want %q", tc.names, err, tc.want)
		}
	}
}

// BenchmarkMintWithCustomClaims is a mint on the miss path with claims
// on: the same allocations as without.
func BenchmarkMintWithCustomClaims(b *testing.B) {
	iss := newTestIssuer(b, Config{}, testKey(b, EdDSA))
	c := Claims{UserID: "user-123", SessionID: "sess-456", Email: "ada@example.com", EmailVerified: true,
		Name: "Ada Lovelace", Custom: []byte(`"orgs":["o1","o2"],"role":"admin"`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := iss.Mint(c); err != nil {
			b.Fatal(err)
		}
	}
}
