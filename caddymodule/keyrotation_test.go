package caddymodule

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/ratelog"
	"github.com/convex-auth/caddy-convex-auth/issuer"
)

func TestKeyRotationCaddyfile(t *testing.T) {
	var h Handler
	in := "convex_auth {\nissuer https://a.example\nkey_rotation 720h\nkey_publish_lead 2m\n}"
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	if time.Duration(h.KeyRotation) != 720*time.Hour || time.Duration(h.KeyPublishLead) != 2*time.Minute {
		t.Fatalf("key_rotation %v key_publish_lead %v", h.KeyRotation, h.KeyPublishLead)
	}
	for _, tc := range []struct{ in, want string }{
		{"convex_auth {\nkey_rotation\n}", "key_rotation needs a value"},
		{"convex_auth {\nkey_rotation monthly\n}", `key_rotation "monthly" is not a duration`},
		{"convex_auth {\nkey_publish_lead -1m\n}", "key_publish_lead must be positive"},
		{"convex_auth {\nkey_rotation 1h\nkey_rotation 2h\n}", "key_rotation is set more than once"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestKeyRotationValidateNamesOption(t *testing.T) {
	const iss = "https://a.example"
	d := func(x time.Duration) caddy.Duration { return caddy.Duration(x) }
	for _, tc := range []struct {
		name string
		h    Handler
		want string
	}{
		{"rotation with signing_key", Handler{Issuer: iss, KeyRotation: d(time.Hour), SigningKey: &SigningKeySource{From: "file", Path: "/k.pem"}},
			"key_rotation applies to the generated key only, but signing_key file /k.pem is set"},
		{"lead with signing_key", Handler{Issuer: iss, KeyPublishLead: d(time.Minute), SigningKey: &SigningKeySource{From: "env", Env: "K"}},
			"key_publish_lead applies to the generated key only"},
		{"short lead", Handler{Issuer: iss, KeyRotation: d(time.Hour), KeyPublishLead: d(10 * time.Second)},
			"key_publish_lead 10s is under the 30s minimum"},
		{"rotation under lead", Handler{Issuer: iss, KeyRotation: d(40 * time.Second)},
			"key_rotation 40s is shorter than key_publish_lead 1m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.h.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	ok := Handler{Issuer: iss, KeyRotation: d(30 * time.Second), KeyPublishLead: d(30 * time.Second)}
	if err := ok.Validate(); err != nil {
		t.Fatalf("rotation = lead = 30s: %v", err)
	}
}

// TestKeyRotatorsConverge plays two instances sharing one file storage: a
// rotation requested in storage reaches both at their next poll, and both
// publish the same JWKS before and after the next key signs.
func TestKeyRotatorsConverge(t *testing.T) {
	ctx := context.Background()
	storage := certmagicKeyStorage{&certmagic.FileStorage{Path: t.TempDir()}}
	const iss = "https://app.example.com"
	name := keyringName(iss, issuer.ES256)
	policy, err := issuer.RotationPolicy{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}

	type instance struct {
		rot *keyRotator
		iss *issuer.Issuer
	}
	var instances []instance
	for range 2 {
		kr, err := issuer.LoadOrCreateKeyring(ctx, storage, name, generatedKeyName(iss, issuer.ES256), issuer.ES256, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		is, err := issuer.New(issuer.Config{Issuer: iss}, kr.Current)
		if err != nil {
			t.Fatal(err)
		}
		// Not started: the test polls by hand.
		rot := &keyRotator{name: name, alg: issuer.ES256, policy: policy, logger: zap.NewNop(),
			errLog: ratelog.New(zap.NewNop(), time.Minute), issuers: map[*issuer.Issuer]keyringVersion{}}
		rot.add(is, storage, kr)
		instances = append(instances, instance{rot, is})
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

	kr, published, err := issuer.RequestRotation(ctx, storage, name, issuer.ES256, time.Now())
	if err != nil || !published {
		t.Fatalf("RequestRotation: %v %v", published, err)
	}
	next := kr.Next
	for _, in := range instances {
		in.rot.poll(ctx)
		if in.iss.SigningKey().ID() != first.ID() || in.iss.NextKey() == nil || in.iss.NextKey().ID() != next.ID() {
			t.Fatalf("after a poll: signing %s next %v, want %s publishing %s", in.iss.SigningKey().ID(), in.iss.NextKey(), first.ID(), next.ID())
		}
	}
	sameJWKS("next key published")

	// Once the lead has passed (played by advancing the stored keyring with
	// a later clock), every instance signs with the next key and keeps
	// publishing the old one.
	if _, changed, err := issuer.AdvanceKeyring(ctx, storage, name, issuer.ES256, time.Now().Add(policy.PublishLead), policy); err != nil || !changed {
		t.Fatalf("promotion: %v %v", changed, err)
	}
	for _, in := range instances {
		in.rot.poll(ctx)
		if in.iss.SigningKey().ID() != next.ID() || in.iss.NextKey() != nil {
			t.Fatalf("after promotion: signing %s", in.iss.SigningKey().ID())
		}
	}
	jwks := sameJWKS("next key signing")
	if !bytes.Contains(jwks, []byte(first.ID())) {
		t.Fatal("the retired key is no longer published")
	}

	// A poll with nothing new leaves the issuer's documents as they were.
	instances[0].rot.poll(ctx)
	if !bytes.Equal(instances[0].iss.JWKS(), jwks) {
		t.Fatal("an idle poll changed the JWKS")
	}
}

// TestKeyRotatorStops: the poller stops when the usage pool destructs it,
// after the last handler using it has left.
func TestKeyRotatorStops(t *testing.T) {
	rot := startKeyRotator("convex_auth/x/keyring_ES256.json", issuer.ES256, issuer.RotationPolicy{}, zap.NewNop())
	done := make(chan error, 1)
	go func() { done <- rot.Destruct() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Destruct did not stop the poller")
	}
}

func rotateKey(t *testing.T, config string) (string, string, error) {
	t.Helper()
	var out, warn bytes.Buffer
	err := RotateKey(context.Background(), &out, &warn, RotateKeyOptions{ConfigFile: writeCaddyfile(t, config)})
	return out.String(), warn.String(), err
}

func TestRotateKeyCommand(t *testing.T) {
	storageDir := t.TempDir()
	config := `{
	storage file_system ` + storageDir + `
}
app.example.com {
	convex_auth {
		issuer https://app.example.com
		key_publish_lead 45s
	}
}
other.example.com {
	convex_auth {
		issuer https://other.example.com
		signing_key file /nonexistent.pem
	}
}`
	if _, _, err := rotateKey(t, config); err == nil || !strings.Contains(err.Error(), "no keyring is in Caddy's storage") || !strings.Contains(err.Error(), "start Caddy once") {
		t.Fatalf("before the gateway ran: %v", err)
	}

	st := certmagicKeyStorage{&certmagic.FileStorage{Path: storageDir}}
	name := keyringName("https://app.example.com", "")
	kr, err := issuer.LoadOrCreateKeyring(context.Background(), st, name, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, warn, err := rotateKey(t, config)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := issuer.LoadKeyring(context.Background(), st, name, "")
	if err != nil || stored.Next == nil || stored.Current.ID() != kr.Current.ID() {
		t.Fatalf("after rotate-key the keyring has next %v (err %v)", stored, err)
	}
	for _, want := range []string{"issuer https://app.example.com: published next RS256 key " + stored.Next.ID(), "key_publish_lead 45s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if !strings.Contains(warn, "issuer https://other.example.com signs with signing_key file /nonexistent.pem, which the gateway does not rotate") {
		t.Errorf("no note about the signing_key handler: %q", warn)
	}

	// Again while the rotation is under way: nothing changes.
	out, _, err = rotateKey(t, config)
	if err != nil || !strings.Contains(out, "already under way") {
		t.Fatalf("second rotate-key: %q %v", out, err)
	}
	if again, _ := issuer.LoadKeyring(context.Background(), st, name, ""); again.Next.ID() != stored.Next.ID() {
		t.Fatal("a second rotate-key replaced the pending next key")
	}

	// convex-config --static embeds both, and says why.
	static, note, err := convexConfig(t, ConvexConfigOptions{ConfigFile: writeCaddyfile(t, strings.Split(config, "other.example.com")[0]), Static: true})
	if err != nil {
		t.Fatal(err)
	}
	ps := parseStaticConfig(t, static)
	var kids []string
	for it := 0; it < ps[0].jwks.Len(); it++ {
		k, _ := ps[0].jwks.Key(it)
		kids = append(kids, k.KeyID())
	}
	if want := []string{stored.Current.ID(), stored.Next.ID()}; !slices.Equal(kids, want) {
		t.Fatalf("static JWKS kids %v, want current and next %v", kids, want)
	}
	if !strings.Contains(note, "a key rotation is under way") {
		t.Fatalf("no note about the rotation: %q", note)
	}

	// Only signing_key handlers: nothing to rotate is an error.
	if _, _, err := rotateKey(t, "other.example.com {\n\tconvex_auth {\n\t\tissuer https://other.example.com\n\t\tsigning_key env X\n\t}\n}\n"); err == nil || !strings.Contains(err.Error(), "nothing to rotate") {
		t.Fatalf("signing_key only: %v", err)
	}
}
