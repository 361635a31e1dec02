package issuer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKeyringName = "convex_auth/app/keyring_ES256.json"

// testPolicy rotates every 10 minutes with a one-minute lead and 5-minute tokens.
var testPolicy = RotationPolicy{RotateEvery: 10 * time.Minute, PublishLead: time.Minute, TokenTTL: 5 * time.Minute}

func advance(t *testing.T, st KeyStorage, now time.Time, p RotationPolicy) (*Keyring, bool) {
	t.Helper()
	kr, changed, err := AdvanceKeyring(context.Background(), st, testKeyringName, ES256, now, p)
	if err != nil {
		t.Fatalf("AdvanceKeyring: %v", err)
	}
	return kr, changed
}

// publishedKIDs lists the keyring's kids in JWKS order: current, next,
// previous newest first.
func publishedKIDs(kr *Keyring) []string {
	kids := []string{kr.Current.ID()}
	if kr.Next != nil {
		kids = append(kids, kr.Next.ID())
	}
	for _, r := range kr.Previous {
		kids = append(kids, r.Key.ID())
	}
	return kids
}

func kidOrNone(k *Key) string {
	if k == nil {
		return "none"
	}
	return k.ID()
}

// TestKeyringScheduledRotation follows one keyring through two scheduled
// rotations: the next key is published a lead before it signs, the old one
// stays published until its last token (plus the grace) has expired.
func TestKeyringScheduledRotation(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	clock := newFakeClock()
	start := clock.Now()
	kr, err := LoadOrCreateKeyring(ctx, st, testKeyringName, ES256, start)
	if err != nil {
		t.Fatal(err)
	}
	first := kr.Current
	if kr.Next != nil || len(kr.Previous) != 0 || !kr.CreatedAt.Equal(start) {
		t.Fatalf("new keyring: next %s, %d previous, created %v", kidOrNone(kr.Next), len(kr.Previous), kr.CreatedAt)
	}

	// Nothing is due before rotate_every - lead; no change, no lock taken.
	locks := st.locked
	if kr, changed := advance(t, st, start.Add(9*time.Minute-time.Second), testPolicy); changed || kr.Next != nil {
		t.Fatalf("changed %v next %s before the rotation was due", changed, kidOrNone(kr.Next))
	}
	if st.locked != locks {
		t.Fatal("AdvanceKeyring took the storage lock with nothing due")
	}

	// At rotate_every - lead the next key is published, not signing.
	publishAt := start.Add(9 * time.Minute)
	kr, changed := advance(t, st, publishAt, testPolicy)
	if !changed || kr.Next == nil || kr.Current.ID() != first.ID() || !kr.NextPublishedAt.Equal(publishAt) {
		t.Fatalf("at the publish time: changed %v current %s next %s published %v", changed, kr.Current.ID(), kidOrNone(kr.Next), kr.NextPublishedAt)
	}
	second := kr.Next
	if got, want := publishedKIDs(kr), []string{first.ID(), second.ID()}; !slices.Equal(got, want) {
		t.Fatalf("published %v, want current then next %v", got, want)
	}

	// It signs only once it has been published for the lead.
	if kr, changed := advance(t, st, publishAt.Add(time.Minute-time.Second), testPolicy); changed || kr.Current.ID() != first.ID() {
		t.Fatalf("promoted %v before the lead had passed", changed)
	}
	promoteAt := publishAt.Add(time.Minute)
	kr, changed = advance(t, st, promoteAt, testPolicy)
	if !changed || kr.Current.ID() != second.ID() || kr.Next != nil || !kr.CreatedAt.Equal(promoteAt) {
		t.Fatalf("at promotion: changed %v current %s next %s", changed, kr.Current.ID(), kidOrNone(kr.Next))
	}
	if len(kr.Previous) != 1 || kr.Previous[0].Key.ID() != first.ID() || !kr.Previous[0].RetiredAt.Equal(promoteAt) {
		t.Fatalf("previous after promotion: %+v", kr.Previous)
	}

	// The first key goes at its retirement + token TTL + grace, not before.
	expiry := promoteAt.Add(testPolicy.TokenTTL + RetiredKeyGrace)
	if kr, changed := advance(t, st, expiry.Add(-time.Second), testPolicy); changed || !slices.Contains(publishedKIDs(kr), first.ID()) {
		t.Fatal("retired key dropped before its last token expired")
	}
	kr, changed = advance(t, st, expiry, testPolicy)
	if got, want := publishedKIDs(kr), []string{second.ID()}; !changed || !slices.Equal(got, want) {
		t.Fatalf("after the retired key expired: changed %v, published %v, want %v", changed, got, want)
	}

	// The second rotation: a third key published, then signing, the second retired.
	kr, _ = advance(t, st, promoteAt.Add(9*time.Minute), testPolicy)
	if kr.Next == nil {
		t.Fatal("no next key at the second rotation's publish time")
	}
	third := kr.Next
	kr, _ = advance(t, st, promoteAt.Add(10*time.Minute), testPolicy)
	if got, want := publishedKIDs(kr), []string{third.ID(), second.ID()}; !slices.Equal(got, want) {
		t.Fatalf("after the second promotion published %v, want %v", got, want)
	}

	// What is stored is what was returned.
	loaded, err := LoadKeyring(ctx, st, testKeyringName, ES256)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := publishedKIDs(loaded), publishedKIDs(kr); !slices.Equal(got, want) {
		t.Fatalf("stored keyring publishes %v, returned %v", got, want)
	}
	if !loaded.Previous[0].RetiredAt.Equal(kr.Previous[0].RetiredAt) || !loaded.CreatedAt.Equal(kr.CreatedAt) {
		t.Fatal("stored times differ from the returned ones")
	}
}

func TestKeyringPruneTiming(t *testing.T) {
	st := newMemStorage()
	start := newFakeClock().Now()
	if _, err := LoadOrCreateKeyring(context.Background(), st, testKeyringName, ES256, start); err != nil {
		t.Fatal(err)
	}
	manual := RotationPolicy{PublishLead: time.Minute, TokenTTL: 2 * time.Minute}
	if _, published, err := RequestRotation(context.Background(), st, testKeyringName, ES256, start); err != nil || !published {
		t.Fatalf("RequestRotation: published %v, %v", published, err)
	}
	retiredAt := start.Add(time.Minute)
	kr, _ := advance(t, st, retiredAt, manual)
	if len(kr.Previous) != 1 {
		t.Fatalf("%d previous keys after promotion, want 1", len(kr.Previous))
	}
	// With no schedule nothing more happens until the retired key expires.
	if _, changed := advance(t, st, retiredAt.Add(manual.TokenTTL+RetiredKeyGrace-time.Second), manual); changed {
		t.Fatal("changed before the retired key expired")
	}
	kr, changed := advance(t, st, retiredAt.Add(manual.TokenTTL+RetiredKeyGrace), manual)
	if !changed || len(kr.Previous) != 0 || kr.Next != nil {
		t.Fatalf("at expiry: changed %v, %d previous, next %s", changed, len(kr.Previous), kidOrNone(kr.Next))
	}
}

// TestRequestRotation is what `caddy convex-auth rotate-key` does.
func TestRequestRotation(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	now := newFakeClock().Now()
	if _, _, err := RequestRotation(ctx, st, testKeyringName, ES256, now); !isKeyNotFound(err) {
		t.Fatalf("RequestRotation without a keyring: %v, want not found", err)
	}
	kr, _ := LoadOrCreateKeyring(ctx, st, testKeyringName, ES256, now)
	current := kr.Current
	kr, published, err := RequestRotation(ctx, st, testKeyringName, ES256, now)
	if err != nil || !published || kr.Next == nil || kr.Current.ID() != current.ID() {
		t.Fatalf("RequestRotation: published %v next %v err %v", published, kr.Next, err)
	}
	next := kr.Next
	// A second request while one is under way changes nothing.
	kr, published, err = RequestRotation(ctx, st, testKeyringName, ES256, now.Add(time.Second))
	if err != nil || published || kr.Next.ID() != next.ID() {
		t.Fatalf("second RequestRotation: published %v err %v", published, err)
	}
	// Rotation off (RotateEvery 0) still promotes a requested key after the lead.
	manual := RotationPolicy{PublishLead: 45 * time.Second}
	if kr, _ := advance(t, st, now.Add(44*time.Second), manual); kr.Current.ID() != current.ID() {
		t.Fatal("requested key signs before the lead")
	}
	if kr, _ := advance(t, st, now.Add(45*time.Second), manual); kr.Current.ID() != next.ID() || kr.Next != nil {
		t.Fatal("requested key not promoted after the lead")
	}
}

// TestKeyringConcurrentAdvancers: instances polling at once make one change.
func TestKeyringConcurrentAdvancers(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	start := newFakeClock().Now()
	if _, err := LoadOrCreateKeyring(ctx, st, testKeyringName, ES256, start); err != nil {
		t.Fatal(err)
	}
	storesBefore := st.stores
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		nexts   = map[string]bool{}
		changes int
	)
	publishAt := start.Add(testPolicy.RotateEvery - testPolicy.PublishLead)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kr, changed, err := AdvanceKeyring(ctx, st, testKeyringName, ES256, publishAt, testPolicy)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			nexts[kidOrNone(kr.Next)] = true
			if changed {
				changes++
			}
		}()
	}
	wg.Wait()
	if changes != 1 || len(nexts) != 1 || nexts["none"] || st.stores != storesBefore+1 {
		t.Fatalf("%d advancers: %d changes, next keys %v, %d stores; want one change, one next key, one store", n, changes, nexts, st.stores-storesBefore)
	}
	if st.heldLocks() != 0 {
		t.Fatal("a lock is still held")
	}
}

// TestLoadOrCreateKeyringConcurrent: instances starting at once share one key.
func TestLoadOrCreateKeyringConcurrent(t *testing.T) {
	st := newMemStorage()
	now := newFakeClock().Now()
	var wg sync.WaitGroup
	kids := make([]string, 6)
	for n := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kr, err := LoadOrCreateKeyring(context.Background(), st, testKeyringName, ES256, now)
			if err != nil {
				t.Error(err)
				return
			}
			kids[n] = kr.Current.ID()
		}()
	}
	wg.Wait()
	for _, k := range kids {
		if k != kids[0] {
			t.Fatalf("concurrent starts got different keys: %v", kids)
		}
	}
	if st.stores != 1 {
		t.Fatalf("%d stores, want 1", st.stores)
	}
}

func TestKeyringErrors(t *testing.T) {
	ctx := context.Background()
	now := newFakeClock().Now()
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not json", "{not json", "not a keyring JSON document"},
		{"no current", `{"version":1}`, "no current key"},
		{"wrong version", `{"version":7,"current":{"pem":"x"}}`, "version is 7"},
		{"bad pem", `{"version":1,"current":{"pem":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}}`, "its current key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStorage()
			st.data[testKeyringName] = []byte(tc.doc)
			_, err := LoadOrCreateKeyring(ctx, st, testKeyringName, ES256, now)
			if err == nil {
				t.Fatal("malformed keyring accepted")
			}
			for _, want := range []string{testKeyringName, "not usable", "remove it", tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if _, _, err := AdvanceKeyring(ctx, st, testKeyringName, ES256, now, testPolicy); err == nil {
				t.Error("AdvanceKeyring accepted a malformed keyring")
			}
			if string(st.data[testKeyringName]) != tc.doc {
				t.Error("a malformed keyring was overwritten")
			}
		})
	}

	// A keyring of another algorithm names both.
	st := newMemStorage()
	if _, err := LoadOrCreateKeyring(ctx, st, testKeyringName, EdDSA, now); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(ctx, st, testKeyringName, ES256); err == nil || !strings.Contains(err.Error(), "signs with EdDSA but the configured algorithm is ES256") {
		t.Fatalf("algorithm mismatch: %v", err)
	}

	for _, tc := range []struct {
		p    RotationPolicy
		want error
	}{
		{RotationPolicy{PublishLead: 10 * time.Second}, ErrPublishLeadTooShort},
		{RotationPolicy{RotateEvery: 40 * time.Second}, ErrRotationUnderLead},
		{RotationPolicy{RotateEvery: -time.Second}, ErrNegativeRotation},
	} {
		if _, err := tc.p.WithDefaults(); !errors.Is(err, tc.want) {
			t.Errorf("policy %+v: %v, want %q", tc.p, err, tc.want)
		}
	}
}

// TestIssuerSetKeys: an issuer applying a keyring signs with its current key
// and publishes the same set, in the same order, as any other that applies it.
func TestIssuerSetKeys(t *testing.T) {
	clock := newFakeClock()
	cur, next, old := testKey(t, ES256), testKey(t, EdDSA), testKey(t, RS256)
	const ttl = time.Minute
	a := newTestIssuer(t, Config{Now: clock.Now, TokenTTL: ttl}, old)
	b := newTestIssuer(t, Config{Now: clock.Now, TokenTTL: ttl}, cur)
	retiredAt := clock.Now()
	for _, iss := range []*Issuer{a, b} {
		if err := iss.SetKeys(cur, next, []RetiredKey{{Key: old, RetiredAt: retiredAt}}); err != nil {
			t.Fatal(err)
		}
	}
	if string(a.JWKS()) != string(b.JWKS()) {
		t.Fatalf("issuers applying one keyring publish different JWKS:\n%s\n%s", a.JWKS(), b.JWKS())
	}
	if got, want := jwksKIDs(t, a.JWKS()), []string{cur.ID(), next.ID(), old.ID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS %v, want %v", got, want)
	}
	tok, _, _, err := a.Mint(Claims{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if kid := decodeSegment(t, tok, 0)["kid"]; kid != cur.ID() {
		t.Fatalf("signed with %v, want %s", kid, cur.ID())
	}
	verifyToken(t, a, tok, clock.Now())
	// The retired key is published for ttl + grace.
	clock.Advance(ttl + RetiredKeyGrace - time.Second)
	if !slices.Contains(jwksKIDs(t, a.JWKS()), old.ID()) {
		t.Fatal("retired key dropped before ttl + grace")
	}
	clock.Advance(time.Second)
	if slices.Contains(jwksKIDs(t, a.JWKS()), old.ID()) {
		t.Fatal("retired key still published after ttl + grace")
	}
	if err := a.SetKeys(nil, nil, nil); err == nil {
		t.Fatal("SetKeys without a signing key succeeded")
	}
}
