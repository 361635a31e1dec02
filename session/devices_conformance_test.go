package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// runDeviceConformance: a browser's device token is remembered per user
// (hashed), until its TTL, which a sign-in renews; at most
// MaxDevicesPerUser per user, the ones expiring first forgotten first;
// ForgetDevices and PurgeUser forget them all.
func runDeviceConformance(t *testing.T, backend conformanceBackend) {
	ctx := context.Background()
	clock := newFakeClock()
	st, dump := backend(t, Options{SessionTTL: confSessionTTL, IdleTTL: confIdleTTL, TouchInterval: confTouchInterval, Now: clock.Now})
	t.Cleanup(func() { _ = st.Close() })
	users, dev := st.(UserStore), st.(Devices)
	known := func(userID, token string) bool {
		t.Helper()
		ok, err := dev.KnownDevice(ctx, userID, token)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	newToken := func() string {
		t.Helper()
		tok, err := NewDeviceToken()
		if err != nil || len(tok) != DeviceTokenLength || !ValidDeviceToken(tok) {
			t.Fatalf("NewDeviceToken = %q, %v", tok, err)
		}
		return tok
	}
	u, err := users.CreateUser(ctx, NewUser{Profile: Profile{Email: "dev@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	browser, other := newToken(), newToken()
	if known(u.ID, browser) {
		t.Fatal("a browser never seen is known")
	}
	if others, err := dev.RememberDevice(ctx, u.ID, browser, time.Hour); err != nil || others {
		t.Fatalf("the first browser: others %v, %v; want none", others, err)
	}
	if others, err := dev.RememberDevice(ctx, u.ID, browser, time.Hour); err != nil || others {
		t.Fatalf("the first browser again: others %v, %v; want none", others, err)
	}
	if !known(u.ID, browser) || known(u.ID, other) || known("someone-else", browser) {
		t.Fatal("known: want the remembered browser for its user only")
	}
	if dump != nil {
		for _, d := range dump() {
			if strings.Contains(d, browser) {
				t.Fatal("the store holds a device token")
			}
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", DeviceTokenLength+1), strings.Repeat("!", DeviceTokenLength)} {
		if _, err := dev.RememberDevice(ctx, u.ID, bad, time.Hour); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("RememberDevice(%q) = %v; want ErrInvalidUser", bad, err)
		}
		if known(u.ID, bad) {
			t.Errorf("a malformed token %q is known", bad)
		}
	}
	clock.Advance(50 * time.Minute)
	if others, err := dev.RememberDevice(ctx, u.ID, other, time.Hour); err != nil || !others {
		t.Fatalf("a second browser: others %v, %v; want the first", others, err)
	}
	if _, err := dev.RememberDevice(ctx, u.ID, browser, time.Hour); err != nil { // a sign-in renews it
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	if !known(u.ID, browser) {
		t.Fatal("a renewed browser was forgotten at its first expiry")
	}
	clock.Advance(31 * time.Minute)
	if known(u.ID, browser) {
		t.Fatal("a browser is known past its expiry")
	}

	// Trusted past the second factor: a mark of its own, beside the
	// browser's entry, with its own expiry, forgotten with the browsers.
	trusted := func(userID, token string) bool {
		t.Helper()
		ok, err := dev.TrustedDevice(ctx, userID, token)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if _, err := dev.RememberDevice(ctx, u.ID, browser, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if trusted(u.ID, browser) {
		t.Fatal("a browser that signed in is trusted past the second factor")
	}
	if err := dev.TrustDevice(ctx, u.ID, browser, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !trusted(u.ID, browser) || trusted(u.ID, other) || trusted("someone-else", browser) {
		t.Fatal("trusted: want the trusted browser for its user only")
	}
	if err := dev.TrustDevice(ctx, u.ID, "short", time.Hour); !errors.Is(err, ErrInvalidUser) {
		t.Fatalf("TrustDevice of a malformed token = %v; want ErrInvalidUser", err)
	}
	clock.Advance(61 * time.Minute)
	if trusted(u.ID, browser) || !known(u.ID, browser) {
		t.Fatal("past the trust's expiry: want the browser known and no longer trusted")
	}
	if err := dev.TrustDevice(ctx, u.ID, browser, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := dev.ForgetDevices(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if trusted(u.ID, browser) || known(u.ID, browser) {
		t.Fatal("a browser is trusted or known after ForgetDevices")
	}

	// The cap: the ones expiring first go first.
	tokens := make([]string, MaxDevicesPerUser+2)
	for i := range tokens {
		tokens[i] = newToken()
		if _, err := dev.RememberDevice(ctx, u.ID, tokens[i], time.Duration(i+1)*time.Minute+time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for i, tok := range tokens {
		if want := i >= 2; known(u.ID, tok) != want {
			t.Fatalf("device %d of %d known: %v; want %v (at most %d, the first to expire forgotten)", i, len(tokens), !want, want, MaxDevicesPerUser)
		}
	}
	if err := dev.ForgetDevices(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	for i, tok := range tokens {
		if known(u.ID, tok) {
			t.Fatalf("device %d known after ForgetDevices", i)
		}
	}
	if _, err := dev.RememberDevice(ctx, u.ID, browser, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := users.PurgeUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if known(u.ID, browser) {
		t.Fatal("a browser is known for a purged user")
	}
	if err := dev.ForgetDevices(ctx, fmt.Sprint("never-", u.ID)); err != nil {
		t.Fatalf("ForgetDevices of a user without devices: %v", err)
	}
}
