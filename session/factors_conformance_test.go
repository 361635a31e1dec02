package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runFactorConformance: a user's TOTP, its accepted steps (once, in
// order), backup codes (each once), passkeys (named, capped, counters
// that only move forward, removable); a reset and PurgeUser remove them
// all; no other user or realm sees them.
func runFactorConformance(t *testing.T, backend conformanceBackend) {
	ctx := context.Background()
	setup := func(t *testing.T) (UserStore, SecondFactors, *fakeClock, func() []string) {
		clock := newFakeClock()
		st, dump := backend(t, Options{SessionTTL: confSessionTTL, IdleTTL: confIdleTTL, TouchInterval: confTouchInterval, Now: clock.Now})
		t.Cleanup(func() { _ = st.Close() })
		return st.(UserStore), st.(SecondFactors), clock, dump
	}
	newUser := func(t *testing.T, us UserStore) string {
		t.Helper()
		u, err := us.CreateUser(ctx, NewUser{Profile: Profile{Email: "mfa@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	factors := func(t *testing.T, f SecondFactors, userID string) *UserFactors {
		t.Helper()
		got, err := f.Factors(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("totp and its steps", func(t *testing.T) {
		us, f, clock, _ := setup(t)
		id := newUser(t, us)
		if got := factors(t, f, id); got.Any() || got.TOTP != nil || got.BackupCodes != 0 || len(got.Passkeys) != 0 {
			t.Fatalf("a new user has factors: %+v", got)
		}
		if ok, err := f.AcceptTOTPStep(ctx, id, 5); ok || err != nil {
			t.Fatalf("a step is accepted without TOTP: %v, %v", ok, err)
		}
		if err := f.SetTOTP(ctx, id, TOTP{Secret: "sealed-1", CreatedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
		got := factors(t, f, id)
		if !got.Any() || got.TOTP == nil || got.TOTP.Secret != "sealed-1" || !got.TOTP.CreatedAt.Equal(clock.Now()) || got.LastTOTPStep != 0 {
			t.Fatalf("after SetTOTP: %+v", got)
		}
		for _, c := range []struct {
			step int64
			ok   bool
		}{{100, true}, {100, false}, {99, false}, {101, true}, {50, false}, {103, true}} {
			if ok, err := f.AcceptTOTPStep(ctx, id, c.step); ok != c.ok || err != nil {
				t.Fatalf("AcceptTOTPStep(%d) = %v, %v; want %v", c.step, ok, err, c.ok)
			}
		}
		if got := factors(t, f, id); got.LastTOTPStep != 103 {
			t.Fatalf("last step %d; want 103", got.LastTOTPStep)
		}
		// Concurrent codes of one step: exactly one is accepted.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, err := f.AcceptTOTPStep(ctx, id, 200); err == nil && ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d concurrent acceptances of one step; want 1", wins.Load())
		}
		if ok, err := f.SwapTOTPSecret(ctx, id, "not-it", "sealed-2"); ok || err != nil {
			t.Fatalf("a swap from the wrong secret: %v, %v", ok, err)
		}
		if ok, err := f.SwapTOTPSecret(ctx, id, "sealed-1", "sealed-2"); !ok || err != nil {
			t.Fatalf("swap: %v, %v", ok, err)
		}
		if got := factors(t, f, id); got.TOTP.Secret != "sealed-2" || got.LastTOTPStep != 200 || !got.TOTP.CreatedAt.Equal(clock.Now()) {
			t.Fatalf("after the swap: %+v", got.TOTP)
		}
		if err := f.RemoveTOTP(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := f.RemoveTOTP(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second RemoveTOTP = %v; want ErrNotFound", err)
		}
		if got := factors(t, f, id); got.Any() || got.LastTOTPStep != 0 {
			t.Fatalf("after RemoveTOTP: %+v", got)
		}
		for _, bad := range []TOTP{{}, {Secret: strings.Repeat("x", MaxSecretBytes+1)}} {
			if err := f.SetTOTP(ctx, id, bad); !errors.Is(err, ErrInvalidUser) {
				t.Errorf("SetTOTP(%d bytes) = %v; want ErrInvalidUser", len(bad.Secret), err)
			}
		}
		if err := f.SetTOTP(ctx, "nobody", TOTP{Secret: "x"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetTOTP for no user = %v; want ErrNotFound", err)
		}
	})

	t.Run("backup codes once each", func(t *testing.T) {
		us, f, _, _ := setup(t)
		id := newUser(t, us)
		var hashes []string
		for i := range 10 {
			hashes = append(hashes, fmt.Sprintf("hash-%02d", i))
		}
		if err := f.SetBackupCodes(ctx, id, hashes); err != nil {
			t.Fatal(err)
		}
		if got := factors(t, f, id); got.BackupCodes != 10 || got.Any() {
			t.Fatalf("%d codes, any %v; want 10 and no factor (codes back one up)", got.BackupCodes, got.Any())
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, err := f.UseBackupCode(ctx, id, "hash-03"); err == nil && ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("a backup code used %d times; want once", wins.Load())
		}
		for _, h := range []string{"hash-99", "", "bc:x", strings.Repeat("h", 500)} {
			if ok, err := f.UseBackupCode(ctx, id, h); ok || err != nil {
				t.Errorf("UseBackupCode(%.12q) = %v, %v; want false", h, ok, err)
			}
		}
		if ok, _ := f.UseBackupCode(ctx, "someone-else", "hash-04"); ok {
			t.Fatal("another user used this user's code")
		}
		if got := factors(t, f, id); got.BackupCodes != 9 {
			t.Fatalf("%d codes left; want 9", got.BackupCodes)
		}
		if err := f.SetBackupCodes(ctx, id, []string{"new-1", "new-2"}); err != nil {
			t.Fatal(err)
		}
		if ok, _ := f.UseBackupCode(ctx, id, "hash-04"); ok {
			t.Fatal("a replaced code still works")
		}
		if got := factors(t, f, id); got.BackupCodes != 2 {
			t.Fatalf("%d codes after replacing; want 2", got.BackupCodes)
		}
		if err := f.SetBackupCodes(ctx, id, make([]string, MaxBackupCodes+1)); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("too many codes: %v", err)
		}
	})

	t.Run("passkeys", func(t *testing.T) {
		us, f, clock, _ := setup(t)
		id := newUser(t, us)
		pk := func(n int) Passkey {
			return Passkey{ID: fmt.Sprintf("cred-%d_A", n), Name: fmt.Sprintf("Key %d", n), Credential: []byte(`{"publicKey":"x"}`),
				SignCount: 5, BackupEligible: n%2 == 0, CreatedAt: clock.Now()}
		}
		if err := f.AddPasskey(ctx, id, pk(1)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if err := f.AddPasskey(ctx, id, pk(2)); err != nil {
			t.Fatal(err)
		}
		if err := f.AddPasskey(ctx, id, pk(1)); !errors.Is(err, ErrAccountExists) {
			t.Fatalf("the same ID again = %v; want ErrAccountExists", err)
		}
		got := factors(t, f, id)
		if !got.Any() || len(got.Passkeys) != 2 || got.Passkeys[0].ID != "cred-1_A" || got.Passkeys[1].Name != "Key 2" ||
			!got.Passkeys[1].BackupEligible || got.Passkeys[0].SignCount != 5 || !got.Passkeys[0].LastUsedAt.IsZero() ||
			string(got.Passkeys[0].Credential) != `{"publicKey":"x"}` {
			t.Fatalf("passkeys: %+v", got.Passkeys)
		}
		clock.Advance(time.Minute)
		if err := f.UsePasskey(ctx, id, "cred-1_A", 6, true, clock.Now()); err != nil {
			t.Fatal(err)
		}
		for _, c := range []uint32{6, 3, 0} {
			if err := f.UsePasskey(ctx, id, "cred-1_A", c, false, clock.Now()); !errors.Is(err, ErrSignCount) {
				t.Errorf("counter %d after 6 = %v; want ErrSignCount", c, err)
			}
		}
		p, ok := factors(t, f, id).Passkey("cred-1_A")
		if !ok || p.SignCount != 6 || !p.BackupState || !p.LastUsedAt.Equal(clock.Now()) {
			t.Fatalf("after use: %+v", p)
		}
		// An authenticator without a counter (always 0) signs in every time.
		zero := pk(3)
		zero.SignCount = 0
		if err := f.AddPasskey(ctx, id, zero); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := f.UsePasskey(ctx, id, zero.ID, 0, false, clock.Now()); err != nil {
				t.Fatalf("a zero counter: %v", err)
			}
		}
		if err := f.UsePasskey(ctx, id, "cred-9_A", 7, false, clock.Now()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("an unknown passkey = %v; want ErrNotFound", err)
		}
		// Concurrent assertions carrying one counter value: one wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if f.UsePasskey(ctx, id, "cred-2_A", 9, false, clock.Now()) == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("one counter value accepted %d times; want once", wins.Load())
		}
		if err := f.RemovePasskey(ctx, id, "cred-1_A"); err != nil {
			t.Fatal(err)
		}
		if err := f.RemovePasskey(ctx, id, "cred-1_A"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second remove = %v; want ErrNotFound", err)
		}
		if err := f.UsePasskey(ctx, id, "cred-1_A", 100, false, clock.Now()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a removed passkey is used: %v", err)
		}
		if _, ok := factors(t, f, id).Passkey("cred-1_A"); ok {
			t.Fatal("a removed passkey is listed")
		}
		for _, bad := range []Passkey{
			{ID: "", Credential: []byte("x")},
			{ID: "has space", Credential: []byte("x")},
			{ID: "ok", Credential: nil},
			{ID: "ok", Name: strings.Repeat("n", MaxPasskeyNameBytes+1), Credential: []byte("x")},
			{ID: "ok", Credential: make([]byte, MaxPasskeyCredentialBytes+1)},
		} {
			if err := f.AddPasskey(ctx, id, bad); !errors.Is(err, ErrInvalidUser) {
				t.Errorf("AddPasskey(%.20q) = %v; want ErrInvalidUser", bad.ID, err)
			}
		}
		for n := len(factors(t, f, id).Passkeys); n < MaxPasskeysPerUser; n++ {
			if err := f.AddPasskey(ctx, id, pk(100+n)); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.AddPasskey(ctx, id, pk(999)); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("passkey %d = %v; want ErrInvalidUser", MaxPasskeysPerUser+1, err)
		}
		if err := f.AddPasskey(ctx, "nobody", pk(1)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a passkey for no user = %v; want ErrNotFound", err)
		}
	})

	t.Run("reset and purge remove them all", func(t *testing.T) {
		us, f, clock, dump := setup(t)
		enrol := func(id string) {
			t.Helper()
			if err := f.SetTOTP(ctx, id, TOTP{Secret: "sealed", CreatedAt: clock.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.AcceptTOTPStep(ctx, id, 42); err != nil {
				t.Fatal(err)
			}
			if err := f.SetBackupCodes(ctx, id, []string{"a", "b"}); err != nil {
				t.Fatal(err)
			}
			if err := f.AddPasskey(ctx, id, Passkey{ID: "pk1", Credential: []byte("c"), CreatedAt: clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		a, b := newUser(t, us), newUser(t, us)
		enrol(a)
		enrol(b)
		if err := f.ResetFactors(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got := factors(t, f, a); got.Any() || got.BackupCodes != 0 || got.LastTOTPStep != 0 {
			t.Fatalf("after a reset: %+v", got)
		}
		if !factors(t, f, b).Any() {
			t.Fatal("resetting one user reset another")
		}
		enrol(a)
		if err := us.PurgeUser(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got := factors(t, f, a); got.Any() || got.BackupCodes != 0 {
			t.Fatalf("after PurgeUser: %+v", got)
		}
		if dump != nil {
			n := 0
			for _, d := range dump() {
				if strings.Contains(d, ":factors:") {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d factor keys after purging one of two users; want 1", n)
			}
		}
	})
}
