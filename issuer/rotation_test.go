package issuer

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

func kidsOf(keys []*Key) []string {
	kids := make([]string, len(keys))
	for n, k := range keys {
		kids[n] = k.ID()
	}
	return kids
}

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

	if err := iss.Rotate(); err == nil {
		t.Fatal("Rotate without a next key succeeded")
	}
	if iss.NextKey() != nil {
		t.Fatal("next key set before SetNextKey")
	}

	// The next key is published before it signs anything.
	iss.SetNextKey(newKey)
	if got, want := jwksKIDs(t, iss.JWKS()), []string{oldKey.ID(), newKey.ID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v, want signing then next %v", got, want)
	}
	if got, want := kidsOf(iss.PublishedKeys()), []string{oldKey.ID(), newKey.ID()}; !slices.Equal(got, want) {
		t.Fatalf("PublishedKeys %v, want %v", got, want)
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

	// Rotate 20 s later: new tokens carry the new kid.
	clock.Advance(20 * time.Second)
	retiredAt := clock.Now()
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	if iss.SigningKey().ID() != newKey.ID() || iss.NextKey() != nil {
		t.Fatalf("after Rotate: signing %s next %v", iss.SigningKey().ID(), iss.NextKey())
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
	clock.Advance(retiredAt.Add(ttl).Sub(clock.Now()) - time.Nanosecond)
	if got := jwksKIDs(t, iss.JWKS()); !slices.Contains(got, oldKey.ID()) {
		t.Fatalf("old key dropped before retired+ttl: %v", got)
	}

	// At retired+ttl it disappears from the JWKS, the served JWKS, the
	// discovery algorithms and PublishedKeys, without an explicit prune.
	clock.Advance(time.Nanosecond)
	if got, want := jwksKIDs(t, iss.JWKS()), []string{newKey.ID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v after retired+ttl, want only %v", got, want)
	}
	if got := discoveryAlgs(t, iss); !slices.Equal(got, []string{"EdDSA"}) {
		t.Fatalf("discovery algs %v, want [EdDSA]", got)
	}
	if got := kidsOf(iss.PublishedKeys()); !slices.Equal(got, []string{newKey.ID()}) {
		t.Fatalf("PublishedKeys %v, want only the new key", got)
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
	iss.SetNextKey(keys[1])
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	iss.SetNextKey(keys[2])
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	if got, want := jwksKIDs(t, iss.JWKS()), []string{keys[2].ID(), keys[1].ID(), keys[0].ID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v, want newest first %v", got, want)
	}

	// keys[0] expires first; PruneRetired drops exactly it.
	clock.Advance(20 * time.Second)
	iss.PruneRetired()
	if got, want := kidsOf(iss.PublishedKeys()), []string{keys[2].ID(), keys[1].ID()}; !slices.Equal(got, want) {
		t.Fatalf("after first expiry: %v, want %v", got, want)
	}
	assertPublicOnly(t, iss.JWKS())

	// keys[1] expires next; the served document notices by itself.
	clock.Advance(10 * time.Second)
	if got, want := jwksKIDs(t, iss.JWKS()), []string{keys[2].ID()}; !slices.Equal(got, want) {
		t.Fatalf("after second expiry: %v, want %v", got, want)
	}

	// Withdrawing a next key unpublishes it.
	iss.SetNextKey(keys[0])
	iss.SetNextKey(nil)
	if got := jwksKIDs(t, iss.JWKS()); !slices.Equal(got, []string{keys[2].ID()}) {
		t.Fatalf("withdrawn next key still published: %v", got)
	}
}

func TestNoPrivateMembersDuringRotation(t *testing.T) {
	clock := newFakeClock()
	iss := newTestIssuer(t, Config{Now: clock.Now}, testKey(t, RS256))
	for _, next := range []*Key{testKey(t, EdDSA), testKey(t, ES256), testKey(t, RS256)} {
		iss.SetNextKey(next)
		assertPublicOnly(t, iss.JWKS())
		if err := iss.Rotate(); err != nil {
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
