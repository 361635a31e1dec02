package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

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

// TestKeyRotatorStops: the poller stops when the usage pool destructs it,
// after the last handler using it has left.
func TestKeyRotatorStops(t *testing.T) {
	rot, err := startKeyPoller("convex_auth/x/keyring_ES256.json", issuer.ES256, issuer.RotationPolicy{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rot.Destruct() }()
	select {
	case <-done:
	case <-time.After(testerTimeout):
		t.Fatal("Destruct did not stop the poller")
	}
}
