package issuer

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestKeyringPollersConverge plays two instances sharing one storage: a
// rotation requested in storage reaches both at their next poll, and both
// publish the same JWKS before and after the next key signs.
func TestKeyringPollersConverge(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	const iss = "https://app.example.com"

	type instance struct {
		poller *KeyringPoller
		iss    *Issuer
	}
	var instances []instance
	var advanced int
	for range 2 {
		kr, err := LoadOrCreateKeyring(ctx, st, testKeyringName, ES256, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		is := newTestIssuer(t, Config{Issuer: iss}, kr.Current)
		// Not started: the test polls by hand.
		p, err := NewKeyringPoller(PollerConfig{
			Name: testKeyringName, Algorithm: ES256,
			OnAdvance: func(*Keyring, RotationPolicy) { advanced++ },
			OnError:   func(err error) { t.Errorf("poll: %v", err) },
		})
		if err != nil {
			t.Fatal(err)
		}
		p.Add(is, st, kr)
		instances = append(instances, instance{p, is})
	}
	first := instances[0].iss.SigningKey()
	if instances[1].iss.SigningKey().ID() != first.ID() {
		t.Fatal("two instances on one storage generated two keys")
	}
	sameJWKS := func(when string) []byte {
		t.Helper()
		a, b := instances[0].iss.JWKS(), instances[1].iss.JWKS()
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: the instances publish different JWKS:\n%s\n%s", when, a, b)
		}
		return a
	}

	kr, published, err := RequestRotation(ctx, st, testKeyringName, ES256, time.Now())
	if err != nil || !published {
		t.Fatalf("RequestRotation: %v %v", published, err)
	}
	next := kr.Next
	for _, in := range instances {
		in.poller.Poll(ctx)
		if got, want := jwksKIDs(t, in.iss.JWKS()), []string{first.ID(), next.ID()}; in.iss.SigningKey().ID() != first.ID() || !slices.Equal(got, want) {
			t.Fatalf("after a poll: signing %s publishing %v, want %s publishing %v", in.iss.SigningKey().ID(), got, first.ID(), want)
		}
	}
	sameJWKS("next key published")

	// Once the lead has passed (played by advancing the stored keyring with
	// a later clock), every instance signs with the next key and keeps
	// publishing the old one.
	if _, changed, err := AdvanceKeyring(ctx, st, testKeyringName, ES256, time.Now().Add(DefaultPublishLead), RotationPolicy{}); err != nil || !changed {
		t.Fatalf("promotion: %v %v", changed, err)
	}
	for _, in := range instances {
		in.poller.Poll(ctx)
		if got, want := jwksKIDs(t, in.iss.JWKS()), []string{next.ID(), first.ID()}; in.iss.SigningKey().ID() != next.ID() || !slices.Equal(got, want) {
			t.Fatalf("after promotion: signing %s publishing %v, want %s publishing %v", in.iss.SigningKey().ID(), got, next.ID(), want)
		}
	}
	jwks := sameJWKS("next key signing")

	// A poll with nothing new leaves the issuer's documents as they were.
	instances[0].poller.Poll(ctx)
	if !bytes.Equal(instances[0].iss.JWKS(), jwks) {
		t.Fatal("an idle poll changed the JWKS")
	}
	if advanced != 0 {
		t.Fatalf("OnAdvance called %d times, though the pollers changed nothing themselves", advanced)
	}
}

// TestKeyringPollerAdvancesAndReports: a poll that advances the keyring says
// so, and one that cannot read it reports the storage's error.
func TestKeyringPollerAdvancesAndReports(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	kr, err := LoadOrCreateKeyring(ctx, st, testKeyringName, EdDSA, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var advancedTo *Keyring
	var errs []error
	p, err := NewKeyringPoller(PollerConfig{
		Name:      testKeyringName,
		Policy:    RotationPolicy{RotateEvery: time.Hour},
		OnAdvance: func(kr *Keyring, _ RotationPolicy) { advancedTo = kr },
		OnError:   func(err error) { errs = append(errs, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	iss := newTestIssuer(t, Config{}, kr.Current)
	p.Add(iss, st, kr)
	p.Poll(ctx)
	if advancedTo == nil || advancedTo.Next == nil {
		t.Fatal("a poll with a rotation due did not publish a next key")
	}
	if got := jwksKIDs(t, iss.JWKS()); !slices.Contains(got, advancedTo.Next.ID()) {
		t.Fatalf("the issuer does not publish the next key: %v", got)
	}

	st.loadErr = errors.New("disk on fire")
	p.Poll(ctx)
	if len(errs) != 1 || !errors.Is(errs[0], st.loadErr) {
		t.Fatalf("errors %v, want the storage's", errs)
	}
	p.Remove(iss)
}

func TestNewKeyringPollerChecksConfig(t *testing.T) {
	if _, err := NewKeyringPoller(PollerConfig{}); err == nil {
		t.Fatal("a poller without a keyring name was made")
	}
	if _, err := NewKeyringPoller(PollerConfig{Name: "k", Policy: RotationPolicy{RotateEvery: 40 * time.Second}}); !errors.Is(err, ErrRotationUnderLead) {
		t.Fatalf("rotation under the lead: %v", err)
	}
}

// TestKeyringPollerStops: Stop ends the background polling.
func TestKeyringPollerStops(t *testing.T) {
	p, err := NewKeyringPoller(PollerConfig{Name: testKeyringName, Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.Add(newTestIssuer(t, Config{}, testKey(t, ES256)), newMemStorage(), &Keyring{Current: testKey(t, ES256)})
	p.Start()
	done := make(chan struct{})
	go func() {
		p.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not stop the poller")
	}
}
