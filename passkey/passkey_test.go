package passkey

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/passkey/passkeytest"
	"github.com/convex-auth/caddy-convex-auth/session"
)

const origin = "http://localhost:8080"

func newRP(t *testing.T, cfg Config) *RP {
	t.Helper()
	rp, err := New(cfg, origin, "Example")
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// register adds a passkey for user with auth and returns it as stored.
func register(t *testing.T, rp *RP, auth *passkeytest.Authenticator, userID string, existing []session.Passkey) session.Passkey {
	t.Helper()
	opts, c, err := rp.BeginRegistration(userID, "ada@example.com", "Ada", "Laptop", existing)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := auth.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rp.FinishRegistration(c, userID, "ada@example.com", "Ada", existing, resp, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCeremonies: register, sign in with the discoverable passkey, use it
// as a second factor; a counter that does not move, another origin,
// another user's ceremony, an expired one and a missing UV where it is
// required are refused.
func TestCeremonies(t *testing.T) {
	rp := newRP(t, Config{})
	auth := &passkeytest.Authenticator{Origin: origin, UV: true}
	p := register(t, rp, auth, "user-1", nil)
	if p.Name != "Laptop" || p.ID == "" || p.BackupEligible || len(p.Credential) == 0 || len(p.Credential) > session.MaxPasskeyCredentialBytes {
		t.Fatalf("registered %+v", p)
	}
	stored := []session.Passkey{p}
	lookup := func(userID string) ([]session.Passkey, error) {
		if userID != "user-1" {
			return nil, errors.New("no such user")
		}
		return stored, nil
	}

	opts, c, err := rp.BeginSignIn(true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(opts), `"mediation":"conditional"`) {
		t.Fatalf("conditional options: %s", opts)
	}
	resp, err := auth.Get(opts)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := UserHandle(resp); err != nil || h != "user-1" {
		t.Fatalf("UserHandle = %q, %v", h, err)
	}
	a, err := rp.FinishSignIn(c, resp, lookup, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a.UserID != "user-1" || a.Passkey.ID != p.ID || a.SignCount != 1 || !a.UserVerified || a.BackupEligible {
		t.Fatalf("assertion %+v", a)
	}
	// The same answer again: the ceremony's challenge is spent only by the
	// caller's cookie, but the counter has not moved once stored.
	stored[0].SignCount = a.SignCount
	if _, err := rp.FinishSignIn(c, resp, lookup, time.Now()); !errors.Is(err, ErrCeremony) {
		t.Fatalf("a replayed answer = %v; want ErrCeremony", err)
	}

	// As a second factor, for its user only.
	opts, c, err = rp.BeginFactor("user-1", stored)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = auth.Get(opts)
	if a, err := rp.FinishFactor(c, "user-1", stored, resp, time.Now()); err != nil || a.SignCount != 2 {
		t.Fatalf("factor: %+v, %v", a, err)
	}
	if _, err := rp.FinishFactor(c, "user-2", stored, resp, time.Now()); !errors.Is(err, ErrCeremony) {
		t.Fatalf("another user's factor ceremony = %v", err)
	}
	if _, err := rp.FinishFactor(c, "user-1", stored, resp, time.Now().Add(CeremonyTTL+time.Second)); !errors.Is(err, ErrCeremony) {
		t.Fatalf("an expired ceremony = %v", err)
	}
	if _, err := rp.FinishSignIn(c, resp, lookup, time.Now()); !errors.Is(err, ErrCeremony) {
		t.Fatalf("a factor ceremony finished as a sign-in = %v", err)
	}

	// A clone lagging behind the stored counter.
	stored[0].SignCount = 10
	auth.SetCounter(3)
	opts, c, _ = rp.BeginFactor("user-1", stored)
	resp, _ = auth.Get(opts)
	if _, err := rp.FinishFactor(c, "user-1", stored, resp, time.Now()); !errors.Is(err, ErrCeremony) {
		t.Fatalf("a counter behind the stored one = %v", err)
	}

	// Another origin.
	evil := &passkeytest.Authenticator{Origin: "http://evil.localhost:8080", UV: true}
	opts, c, _ = rp.BeginRegistration("user-1", "a", "A", "x", nil)
	resp, _ = evil.Create(opts)
	if _, err := rp.FinishRegistration(c, "user-1", "a", "A", nil, resp, time.Now()); !errors.Is(err, ErrCeremony) {
		t.Fatalf("a registration from another origin = %v", err)
	}
	// Registration excludes the user's passkeys and refuses a repeat.
	opts, _, _ = rp.BeginRegistration("user-1", "a", "A", "x", stored)
	if !strings.Contains(string(opts), p.ID) {
		t.Fatal("the options do not exclude the user's passkey")
	}
}

// TestUserVerificationRequired: with user_verification required, an
// assertion without the UV flag is refused; preferred accepts it.
func TestUserVerificationRequired(t *testing.T) {
	for _, uv := range []string{VerificationRequired, VerificationPreferred} {
		rp := newRP(t, Config{UserVerification: uv})
		auth := &passkeytest.Authenticator{Origin: origin, UV: true, BackupEligible: true, BackupState: true}
		p := register(t, rp, auth, "user-1", nil)
		if !p.BackupEligible || !p.BackupState {
			t.Fatalf("a synced passkey registered as %+v", p)
		}
		auth.UV = false
		opts, c, _ := rp.BeginFactor("user-1", []session.Passkey{p})
		resp, _ := auth.Get(opts)
		a, err := rp.FinishFactor(c, "user-1", []session.Passkey{p}, resp, time.Now())
		if uv == VerificationRequired && !errors.Is(err, ErrCeremony) {
			t.Errorf("required: an assertion without UV = %v; want ErrCeremony", err)
		}
		if uv == VerificationPreferred && (err != nil || a.UserVerified || !a.BackupEligible) {
			t.Errorf("preferred: %+v, %v; want accepted, not verified, backup eligible", a, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{UserVerification: "always"}, {Attachment: "usb"}, {Origins: []string{"example.com"}}, {Origins: []string{"https://x.example.com/path"}}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Config{UserVerification: "required", Attachment: "platform", Origins: []string{"https://login.example.com"}}).Validate(); err != nil {
		t.Fatal(err)
	}
}
