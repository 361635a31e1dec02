package issuer

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

func discoveryAlgs(t *testing.T, iss *Issuer) []string {
	t.Helper()
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(iss.Discovery(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Algs
}

func TestRotation(t *testing.T) {
	const ttl = time.Minute
	clock := newFakeClock()
	oldKey, newKey := testKey(t, ES256), testKey(t, EdDSA)
	iss := newTestIssuer(t, Config{Now: clock.Now, TokenTTL: ttl}, oldKey)

	// The next key is published before it signs anything.
	if err := iss.SetKeys(oldKey, newKey, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := jwksKIDs(t, iss.JWKS()), []string{oldKey.ID(), newKey.ID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v, want signing then next %v", got, want)
	}
	if got := discoveryAlgs(t, iss); !slices.Equal(got, []string{"ES256", "EdDSA"}) {
		t.Fatalf("discovery algs %v, want [ES256 EdDSA]", got)
	}
	assertPublicOnly(t, iss.JWKS())
	oldToken, _, oldExp, err := iss.Mint(Claims{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if kid := decodeSegment(t, oldToken, 0)["kid"]; kid != oldKey.ID() {
		t.Fatalf("token signed with %v before rotation, want the old key %s", kid, oldKey.ID())
	}

	// Promoted 20 s later: new tokens carry the new kid.
	clock.Advance(20 * time.Second)
	retiredAt := clock.Now()
	if err := iss.SetKeys(newKey, nil, []RetiredKey{{Key: oldKey, RetiredAt: retiredAt}}); err != nil {
		t.Fatal(err)
	}
	if iss.SigningKey().ID() != newKey.ID() {
		t.Fatalf("after promotion: signing %s", iss.SigningKey().ID())
	}
	newToken, _, _, err := iss.Mint(Claims{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if kid := decodeSegment(t, newToken, 0)["kid"]; kid != newKey.ID() {
		t.Fatalf("token signed with %v after rotation, want the new key %s", kid, newKey.ID())
	}
	if got, want := jwksKIDs(t, iss.JWKS()), []string{newKey.ID(), oldKey.ID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v, want new then old %v", got, want)
	}
	assertPublicOnly(t, iss.JWKS())

	// Until its last token expires, the old key stays published and its
	// tokens verify against the JWKS.
	clock.Advance(oldExp.Sub(clock.Now()) - time.Second)
	verifyToken(t, iss, oldToken, clock.Now())
	verifyToken(t, iss, newToken, clock.Now())
	expiry := retiredKeyExpiry(retiredAt, ttl)
	clock.Advance(expiry.Sub(clock.Now()) - time.Nanosecond)
	if got := jwksKIDs(t, iss.JWKS()); !slices.Contains(got, oldKey.ID()) {
		t.Fatalf("old key dropped before retired+ttl+grace: %v", got)
	}

	// At retired+ttl+grace it disappears from the JWKS and the discovery
	// algorithms, without an explicit prune.
	clock.Advance(time.Nanosecond)
	if got, want := jwksKIDs(t, iss.JWKS()), []string{newKey.ID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v after retired+ttl+grace, want only %v", got, want)
	}
	if got := discoveryAlgs(t, iss); !slices.Equal(got, []string{"EdDSA"}) {
		t.Fatalf("discovery algs %v, want [EdDSA]", got)
	}
	set, err := jwk.Parse(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify([]byte(oldToken), jws.WithKeySet(set)); err == nil {
		t.Fatal("the signature of a key no longer published still verifies")
	}
	if _, err := jws.Verify([]byte(newToken), jws.WithKeySet(set)); err != nil {
		t.Fatalf("the current key's signature does not verify: %v", err)
	}
}

func TestRotationLazyRefreshAndPrune(t *testing.T) {
	const ttl = 30 * time.Second
	clock := newFakeClock()
	keys := []*Key{testKey(t, RS256), testKey(t, EdDSA), testKey(t, ES256)}
	iss := newTestIssuer(t, Config{Now: clock.Now, TokenTTL: ttl}, keys[0])

	// Two rotations 10 s apart: two previous keys with different expiries.
	first := []RetiredKey{{Key: keys[0], RetiredAt: clock.Now()}}
	if err := iss.SetKeys(keys[1], nil, first); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if err := iss.SetKeys(keys[2], nil, append([]RetiredKey{{Key: keys[1], RetiredAt: clock.Now()}}, first...)); err != nil {
		t.Fatal(err)
	}
	if got, want := jwksKIDs(t, iss.JWKS()), []string{keys[2].ID(), keys[1].ID(), keys[0].ID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v, want newest first %v", got, want)
	}

	// keys[0] expires first; PruneRetired drops exactly it.
	clock.Advance(20*time.Second + RetiredKeyGrace)
	iss.PruneRetired()
	if got, want := jwksKIDs(t, iss.keys.Load().jwks), []string{keys[2].ID(), keys[1].ID()}; !slices.Equal(got, want) {
		t.Fatalf("after first expiry: %v, want %v", got, want)
	}
	assertPublicOnly(t, iss.JWKS())

	// keys[1] expires next; the served document notices by itself.
	clock.Advance(10 * time.Second)
	if got, want := jwksKIDs(t, iss.JWKS()), []string{keys[2].ID()}; !slices.Equal(got, want) {
		t.Fatalf("after second expiry: %v, want %v", got, want)
	}

	// Withdrawing a next key unpublishes it.
	for _, next := range []*Key{keys[0], nil} {
		if err := iss.SetKeys(keys[2], next, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := jwksKIDs(t, iss.JWKS()); !slices.Equal(got, []string{keys[2].ID()}) {
		t.Fatalf("withdrawn next key still published: %v", got)
	}
}

func TestNoPrivateMembersDuringRotation(t *testing.T) {
	clock := newFakeClock()
	cur := testKey(t, RS256)
	iss := newTestIssuer(t, Config{Now: clock.Now}, cur)
	var previous []RetiredKey
	for _, next := range []*Key{testKey(t, EdDSA), testKey(t, ES256), testKey(t, RS256)} {
		if err := iss.SetKeys(cur, next, previous); err != nil {
			t.Fatal(err)
		}
		assertPublicOnly(t, iss.JWKS())
		previous = append([]RetiredKey{{Key: cur, RetiredAt: clock.Now()}}, previous...)
		cur = next
		if err := iss.SetKeys(cur, nil, previous); err != nil {
			t.Fatal(err)
		}
		assertPublicOnly(t, iss.JWKS())
		clock.Advance(time.Minute)
	}
	// The same key is never published twice, even when rotated back to.
	kids := jwksKIDs(t, iss.JWKS())
	if len(kids) != 3 {
		t.Fatalf("JWKS kids %v, want the three distinct keys once each", kids)
	}
}
