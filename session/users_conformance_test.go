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

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// runUserConformance checks every behaviour the UserStore interface
// promises; the in-process and the Redis store both run it.
func runUserConformance(t *testing.T, backend conformanceBackend) {
	t.Run("devices", func(t *testing.T) { runDeviceConformance(t, backend) })
	t.Run("second factors", func(t *testing.T) { runFactorConformance(t, backend) })
	ctx := context.Background()
	setup := func(t *testing.T) (UserStore, *fakeClock, func() []string) {
		clock := newFakeClock()
		s, dump := backend(t, Options{SessionTTL: confSessionTTL, IdleTTL: confIdleTTL, TouchInterval: confTouchInterval, Now: clock.Now})
		t.Cleanup(func() { _ = s.Close() })
		us, ok := s.(UserStore)
		if !ok {
			t.Fatalf("%T does not implement UserStore", s)
		}
		return us, clock, dump
	}

	t.Run("create and get user", func(t *testing.T) {
		s, clock, _ := setup(t)
		u, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "  Ada@Example.COM ", EmailVerified: true, Name: "Ada"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(u.ID) != 22 || !u.CreatedAt.Equal(clock.Now()) || u.Profile.Email != "ada@example.com" {
			t.Fatalf("created %+v; want a 22-character ID, created now, the email normalised", u)
		}
		got, err := s.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || !got.CreatedAt.Equal(u.CreatedAt) || got.Profile != u.Profile {
			t.Fatalf("GetUser = %+v; want %+v", got, u)
		}
		other, err := s.CreateUser(ctx, NewUser{})
		if err != nil || other.ID == u.ID {
			t.Fatalf("second user: %v, same ID %v", err, other != nil && other.ID == u.ID)
		}
		for _, id := range []string{"", "nobody", strings.Repeat("x", 1000)} {
			if _, err := s.GetUser(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetUser(%.10q) = %v; want ErrNotFound", id, err)
			}
		}
	})

	t.Run("user by verified email only", func(t *testing.T) {
		s, _, _ := setup(t)
		unverified, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "grace@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByEmail(ctx, "grace@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unverified email found: %v", err)
		}
		verified, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "Grace@example.com", EmailVerified: true}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.UserByEmail(ctx, " GRACE@example.com")
		if err != nil || got.ID != verified.ID {
			t.Fatalf("UserByEmail = %v, %v; want the verified user", got, err)
		}
		// The first verified holder keeps the email.
		second, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "grace@example.com", EmailVerified: true}})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByEmail(ctx, "grace@example.com"); got == nil || got.ID != verified.ID {
			t.Fatal("a later user took over a verified email")
		}
		// Once the holder changes email, the index no longer leads to it.
		verified.Profile.Email = "grace.hopper@example.com"
		if err := s.UpdateUser(ctx, verified); err != nil {
			t.Fatal(err)
		}
		if got, err := s.UserByEmail(ctx, "grace@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("stale index entry used: %v, %v", got, err)
		}
		if got, err := s.UserByEmail(ctx, "grace.hopper@example.com"); err != nil || got.ID != verified.ID {
			t.Fatalf("new email not indexed: %v, %v", got, err)
		}
		if _, err := s.UserByEmail(ctx, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty email: %v", err)
		}
		_ = unverified
		_ = second
	})

	t.Run("update user", func(t *testing.T) {
		s, clock, _ := setup(t)
		u, err := s.CreateUser(ctx, NewUser{Profile: Profile{Name: "Ada"}})
		if err != nil {
			t.Fatal(err)
		}
		created := u.CreatedAt
		clock.Advance(time.Hour)
		u.Profile = Profile{Email: "ADA@example.com", EmailVerified: true, Name: "Ada Lovelace", Picture: "https://example.com/a.png"}
		u.CreatedAt = clock.Now()
		if err := s.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.CreatedAt.Equal(created) || got.Profile.Name != "Ada Lovelace" || got.Profile.Email != "ada@example.com" {
			t.Fatalf("after update: %+v", got)
		}
		if err := s.UpdateUser(ctx, &User{ID: "nobody"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("updating a missing user: %v; want ErrNotFound", err)
		}
		if err := s.UpdateUser(ctx, &User{ID: u.ID, Profile: Profile{Name: strings.Repeat("n", MaxNameBytes+1)}}); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("oversized name: %v; want ErrInvalidUser", err)
		}
	})

	t.Run("remove user", func(t *testing.T) {
		s, _, _ := setup(t)
		u, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "x@example.com", EmailVerified: true}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("removed user found: %v", err)
		}
		if _, err := s.UserByEmail(ctx, "x@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("removed user found by email: %v", err)
		}
		if err := s.RemoveUser(ctx, u.ID); err != nil {
			t.Fatalf("removing again: %v", err)
		}
		// The email is free again.
		again, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "x@example.com", EmailVerified: true}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.UserByEmail(ctx, "x@example.com"); err != nil || got.ID != again.ID {
			t.Fatalf("UserByEmail after re-creation: %v, %v", got, err)
		}
	})

	t.Run("invalid user input", func(t *testing.T) {
		s, _, _ := setup(t)
		if _, err := s.CreateUser(ctx, NewUser{Profile: Profile{Picture: strings.Repeat("p", MaxPictureBytes+1)}}); !errors.Is(err, ErrInvalidUser) || IsUnavailable(err) {
			t.Fatalf("oversized picture: %v; want ErrInvalidUser", err)
		}
	})

	t.Run("accounts bind once", func(t *testing.T) {
		s, _, _ := setup(t)
		a := Account{Provider: "github", ProviderAccountID: "12345", UserID: "user-1"}
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetAccount(ctx, "github", "12345")
		if err != nil || *got != a {
			t.Fatalf("GetAccount = %+v, %v; want %+v", got, err, a)
		}
		if err := s.CreateAccount(ctx, Account{Provider: "github", ProviderAccountID: "12345", UserID: "user-2"}); !errors.Is(err, ErrAccountExists) {
			t.Fatalf("binding again: %v; want ErrAccountExists", err)
		}
		if got, _ := s.GetAccount(ctx, "github", "12345"); got == nil || got.UserID != "user-1" {
			t.Fatal("a second bind changed the account's user")
		}
		// Provider and ID are separate fields, not one concatenated string.
		for _, miss := range [][2]string{{"google", "12345"}, {"github", "1234"}, {"github1", "2345"}, {"", ""}} {
			if _, err := s.GetAccount(ctx, miss[0], miss[1]); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetAccount(%q, %q) = %v; want ErrNotFound", miss[0], miss[1], err)
			}
		}
		pw := Account{Provider: "password", ProviderAccountID: "ada@example.com", UserID: "user-3", Secret: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA"}
		if err := s.CreateAccount(ctx, pw); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetAccount(ctx, "password", "ada@example.com"); err != nil || got.Secret != pw.Secret {
			t.Fatalf("password account: %+v, %v", got, err)
		}
		for name, bad := range map[string]Account{
			"no provider": {ProviderAccountID: "1", UserID: "u"},
			"no user":     {Provider: "github", ProviderAccountID: "1"},
			"long id":     {Provider: "github", ProviderAccountID: strings.Repeat("1", MaxProviderAccountIDBytes+1), UserID: "u"},
		} {
			if err := s.CreateAccount(ctx, bad); !errors.Is(err, ErrInvalidUser) {
				t.Errorf("%s: %v; want ErrInvalidUser", name, err)
			}
		}
	})

	t.Run("concurrent account binds: one wins", func(t *testing.T) {
		s, _, _ := setup(t)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				err := s.CreateAccount(ctx, Account{Provider: "oidc", ProviderAccountID: "sub", UserID: fmt.Sprint("u", i)})
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrAccountExists) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d binds won; want 1", wins.Load())
		}
	})

	t.Run("single-use values", func(t *testing.T) {
		s, clock, _ := setup(t)
		if err := s.PutOnce(ctx, "state-1", []byte("flow data"), 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeOnce(ctx, "state-2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown secret: %v", err)
		}
		if _, err := s.PeekOnce(ctx, "state-2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("peek of an unknown secret: %v", err)
		}
		// A peek leaves the value in place, however often.
		for range 2 {
			if got, err := s.PeekOnce(ctx, "state-1"); err != nil || string(got) != "flow data" {
				t.Fatalf("PeekOnce = %q, %v", got, err)
			}
		}
		got, err := s.TakeOnce(ctx, "state-1")
		if err != nil || string(got) != "flow data" {
			t.Fatalf("TakeOnce = %q, %v", got, err)
		}
		if _, err := s.TakeOnce(ctx, "state-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second take: %v; want ErrNotFound", err)
		}
		if _, err := s.PeekOnce(ctx, "state-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("peek after the take: %v; want ErrNotFound", err)
		}
		if err := s.PutOnce(ctx, "link", []byte{}, 15*time.Minute); err != nil {
			t.Fatal(err)
		}
		clock.Advance(15 * time.Minute)
		if _, err := s.PeekOnce(ctx, "link"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired value peeked: %v", err)
		}
		if _, err := s.TakeOnce(ctx, "link"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired value taken: %v", err)
		}
		if err := s.PutOnce(ctx, "x", make([]byte, MaxOnceValueBytes+1), time.Minute); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("oversized value: %v", err)
		}
		if _, err := s.TakeOnce(ctx, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty secret: %v", err)
		}
	})

	t.Run("single-use value is taken once under concurrency", func(t *testing.T) {
		s, _, _ := setup(t)
		if err := s.PutOnce(ctx, "race", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				if _, err := s.TakeOnce(ctx, "race"); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d takes succeeded; want 1", wins.Load())
		}
	})

	t.Run("backend holds no single-use secret", func(t *testing.T) {
		s, _, dump := setup(t)
		if dump == nil {
			t.Skip("backend cannot be inspected")
		}
		secret := "single-use-secret-value-0123456789"
		if err := s.PutOnce(ctx, secret, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RateHit(ctx, "password:ada@example.com", 10, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, Account{Provider: "email", ProviderAccountID: "ada@example.com", UserID: "u"}); err != nil {
			t.Fatal(err)
		}
		for _, d := range dump() {
			if strings.Contains(d, secret) {
				t.Fatal("the backend holds a single-use secret")
			}
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		s, clock, _ := setup(t)
		const limit = 10
		for i := 1; i <= limit; i++ {
			ok, err := s.RateHit(ctx, "pw:ada", limit, time.Hour)
			if err != nil || !ok {
				t.Fatalf("hit %d: %v, %v; want allowed", i, ok, err)
			}
		}
		for range 3 {
			if ok, err := s.RateHit(ctx, "pw:ada", limit, time.Hour); err != nil || ok {
				t.Fatalf("hit past the limit: %v, %v; want refused", ok, err)
			}
		}
		if ok, _ := s.RateHit(ctx, "pw:grace", limit, time.Hour); !ok {
			t.Fatal("another key was limited")
		}
		clock.Advance(time.Hour - time.Millisecond)
		if ok, _ := s.RateHit(ctx, "pw:ada", limit, time.Hour); ok {
			t.Fatal("allowed before the window ended")
		}
		clock.Advance(time.Millisecond)
		if ok, err := s.RateHit(ctx, "pw:ada", limit, time.Hour); err != nil || !ok {
			t.Fatalf("after the window: %v, %v; want allowed", ok, err)
		}
		if err := s.RateReset(ctx, "pw:ada"); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= limit; i++ {
			if ok, _ := s.RateHit(ctx, "pw:ada", limit, time.Hour); !ok {
				t.Fatalf("hit %d after reset refused", i)
			}
		}
		if _, err := s.RateHit(ctx, "", limit, time.Hour); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("empty key: %v", err)
		}
	})

	t.Run("limiter", func(t *testing.T) {
		us, clock, dump := setup(t)
		l, ok := us.(Limiter)
		if !ok {
			t.Fatalf("%T is no Limiter", us)
		}
		// A budget that cannot refill during the test, however slow the
		// machine (Redis's clock is real).
		r := Rate{Events: 3, Per: time.Hour}
		for i := 1; i <= 3; i++ {
			if ok, _, err := l.Allow(ctx, "signup:192.0.2.1", r); err != nil || !ok {
				t.Fatalf("event %d of 3: %v, %v", i, ok, err)
			}
		}
		ok, retry, err := l.Allow(ctx, "signup:192.0.2.1", r)
		if err != nil || ok || retry <= 0 || retry > r.Per {
			t.Fatalf("event 4 of 3: allowed %v, retry after %s, %v; want refused with 0 < retry <= %s", ok, retry, err, r.Per)
		}
		// Another key has its own budget.
		if ok, _, err := l.Allow(ctx, "signup:192.0.2.2", r); err != nil || !ok {
			t.Fatalf("another client: %v, %v", ok, err)
		}
		// The budget refills with time (Redis's clock is real, so this one
		// is short: one event per 300 ms).
		short := Rate{Events: 1, Per: 300 * time.Millisecond}
		if ok, _, err := l.Allow(ctx, "signup:192.0.2.3", short); err != nil || !ok {
			t.Fatalf("first event: %v, %v", ok, err)
		}
		time.Sleep(short.Per)
		clock.Advance(short.Per)
		if ok, _, err := l.Allow(ctx, "signup:192.0.2.3", short); err != nil || !ok {
			t.Fatalf("after refill: %v, %v", ok, err)
		}
		if _, _, err := l.Allow(ctx, "", r); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("empty key: %v", err)
		}
		if _, _, err := l.Allow(ctx, "k", Rate{}); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("zero rate: %v", err)
		}
		if dump != nil {
			for _, d := range dump() {
				if strings.Contains(d, "192.0.2.1") {
					t.Fatal("the backend holds a client address in the clear")
				}
			}
		}
	})

	t.Run("accounts of a user, and unbinding one", func(t *testing.T) {
		s, _, _ := setup(t)
		ada, _ := s.CreateUser(ctx, NewUser{})
		bob, _ := s.CreateUser(ctx, NewUser{})
		for _, a := range []Account{
			{Provider: "password", ProviderAccountID: "ada@example.com", UserID: ada.ID, Secret: "hash"},
			{Provider: "github", ProviderAccountID: "42", UserID: ada.ID},
			{Provider: "github", ProviderAccountID: "7", UserID: bob.ID},
		} {
			if err := s.CreateAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		// A refused bind is not listed for the loser.
		if err := s.CreateAccount(ctx, Account{Provider: "github", ProviderAccountID: "42", UserID: bob.ID}); !errors.Is(err, ErrAccountExists) {
			t.Fatalf("second bind: %v; want ErrAccountExists", err)
		}
		accountsAre := func(t *testing.T, userID string, want ...string) {
			t.Helper()
			got, err := s.AccountsOf(ctx, userID)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, a := range got {
				if a.UserID != userID {
					t.Fatalf("AccountsOf(%s) returned %s's account", userID, a.UserID)
				}
				names = append(names, a.Provider+"/"+a.ProviderAccountID)
			}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Fatalf("AccountsOf = %v; want %v", names, want)
			}
		}
		accountsAre(t, ada.ID, "github/42", "password/ada@example.com")
		accountsAre(t, bob.ID, "github/7")
		accountsAre(t, "nobody")
		if got, _ := s.AccountsOf(ctx, ada.ID); got[1].Secret != "hash" {
			t.Fatal("AccountsOf drops the account's secret")
		}

		if err := s.DeleteAccount(ctx, "github", "42"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAccount(ctx, "github", "42"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetAccount after DeleteAccount: %v", err)
		}
		accountsAre(t, ada.ID, "password/ada@example.com")
		for _, pa := range [][2]string{{"github", "42"}, {"github", "nobody"}, {"", ""}} {
			if err := s.DeleteAccount(ctx, pa[0], pa[1]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("DeleteAccount(%v) of no account: %v; want ErrNotFound", pa, err)
			}
		}
		// The freed account can go to another user, and only that one lists it.
		if err := s.CreateAccount(ctx, Account{Provider: "github", ProviderAccountID: "42", UserID: bob.ID}); err != nil {
			t.Fatal(err)
		}
		accountsAre(t, bob.ID, "github/42", "github/7")
		accountsAre(t, ada.ID, "password/ada@example.com")
	})

	t.Run("purge user removes user, email, accounts and sessions", func(t *testing.T) {
		s, _, dump := setup(t)
		store := s.(Store)
		revoked := watchRevocations(store)
		ada, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "ada@example.com", EmailVerified: true}})
		if err != nil {
			t.Fatal(err)
		}
		bob, _ := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "bob@example.com", EmailVerified: true}})
		for _, a := range []Account{
			{Provider: "password", ProviderAccountID: "ada@example.com", UserID: ada.ID},
			{Provider: "github", ProviderAccountID: "42", UserID: ada.ID},
			{Provider: "github", ProviderAccountID: "7", UserID: bob.ID},
		} {
			if err := s.CreateAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		tok1, s1, _ := store.Create(ctx, NewSession{UserID: ada.ID})
		tok2, _, _ := store.Create(ctx, NewSession{UserID: ada.ID})
		tokBob, _, _ := store.Create(ctx, NewSession{UserID: bob.ID})

		if err := s.PurgeUser(ctx, ada.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetUser(ctx, ada.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetUser after purge: %v", err)
		}
		if _, err := s.UserByEmail(ctx, "ada@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UserByEmail after purge: %v", err)
		}
		for _, pa := range [][2]string{{"password", "ada@example.com"}, {"github", "42"}} {
			if _, err := s.GetAccount(ctx, pa[0], pa[1]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("account %v after purge: %v", pa, err)
			}
		}
		if l, err := s.AccountsOf(ctx, ada.ID); err != nil || len(l) != 0 {
			t.Fatalf("AccountsOf after purge = %v, %v", l, err)
		}
		for _, tok := range []string{tok1, tok2} {
			if _, err := store.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a session outlived the purge: %v", err)
			}
		}
		if !revoked.has(s1.ID) {
			t.Fatal("the purge did not announce the revocation")
		}
		// Bob is untouched.
		if _, err := store.Lookup(ctx, tokBob); err != nil {
			t.Fatalf("another user's session: %v", err)
		}
		if a, err := s.GetAccount(ctx, "github", "7"); err != nil || a.UserID != bob.ID {
			t.Fatalf("another user's account: %v, %v", a, err)
		}
		if u, err := s.UserByEmail(ctx, "bob@example.com"); err != nil || u.ID != bob.ID {
			t.Fatalf("another user's email: %v, %v", u, err)
		}
		// Gone means gone: again is ErrNotFound, and the email and accounts are free.
		if err := s.PurgeUser(ctx, ada.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second purge: %v; want ErrNotFound", err)
		}
		if err := s.PurgeUser(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("purge of an unknown user: %v; want ErrNotFound", err)
		}
		again, _ := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "ada@example.com", EmailVerified: true}})
		if u, err := s.UserByEmail(ctx, "ada@example.com"); err != nil || u.ID != again.ID {
			t.Fatalf("the purged email did not go to the new user: %v, %v", u, err)
		}
		if err := s.CreateAccount(ctx, Account{Provider: "github", ProviderAccountID: "42", UserID: again.ID}); err != nil {
			t.Fatalf("the purged account cannot be bound again: %v", err)
		}
		if dump != nil {
			for _, d := range dump() {
				if strings.Contains(d, ada.ID) {
					t.Fatalf("the backend still holds the purged user's ID: %q", d)
				}
			}
		}
	})

	t.Run("purge user removes the user's pending single-use values", func(t *testing.T) {
		s, _, dump := setup(t)
		ada, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "ada@example.com", EmailVerified: true}})
		if err != nil {
			t.Fatal(err)
		}
		bob, _ := s.CreateUser(ctx, NewUser{Profile: Profile{Email: "bob@example.com", EmailVerified: true}})
		for _, p := range []struct {
			owner, secret string
			ttl           time.Duration
		}{
			{ada.ID, "ada-reset", 15 * time.Minute},
			{ada.ID, "ada-verify", 24 * time.Hour},
			{ada.ID, "ada-signin", 10 * time.Minute},
			{bob.ID, "bob-reset", 15 * time.Minute},
		} {
			if err := s.PutOnceFor(ctx, p.owner, p.secret, []byte("for "+p.secret), p.ttl); err != nil {
				t.Fatalf("PutOnceFor(%s): %v", p.secret, err)
			}
		}
		if err := s.PutOnce(ctx, "no-owner", []byte("flow"), time.Hour); err != nil {
			t.Fatal(err)
		}
		// Owned values are ordinary single-use values.
		if v, err := s.PeekOnce(ctx, "ada-reset"); err != nil || string(v) != "for ada-reset" {
			t.Fatalf("PeekOnce of an owned value = %q, %v", v, err)
		}
		if v, err := s.TakeOnce(ctx, "ada-signin"); err != nil || string(v) != "for ada-signin" {
			t.Fatalf("TakeOnce of an owned value = %q, %v", v, err)
		}
		if n, _ := pendingIndexOf(t, s, ada.ID); n == 0 {
			t.Fatal("ada's values are not indexed")
		}

		if err := s.PurgeUser(ctx, ada.ID); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"ada-reset", "ada-verify", "ada-signin"} {
			if _, err := s.TakeOnce(ctx, secret); !errors.Is(err, ErrNotFound) {
				t.Fatalf("TakeOnce(%s) after the purge = %v; want ErrNotFound", secret, err)
			}
		}
		if n, _ := pendingIndexOf(t, s, ada.ID); n != 0 {
			t.Fatalf("the purged user's index holds %d entries; want none", n)
		}
		// Bob's and nobody's values are untouched.
		if v, err := s.TakeOnce(ctx, "bob-reset"); err != nil || string(v) != "for bob-reset" {
			t.Fatalf("another user's value after the purge = %q, %v", v, err)
		}
		if v, err := s.TakeOnce(ctx, "no-owner"); err != nil || string(v) != "flow" {
			t.Fatalf("an unowned value after the purge = %q, %v", v, err)
		}
		// A purged or unknown user gets no value, and nothing is left of it.
		for _, id := range []string{ada.ID, "nobody"} {
			if err := s.PutOnceFor(ctx, id, "late", []byte("v"), time.Minute); !errors.Is(err, ErrNotFound) {
				t.Fatalf("PutOnceFor(%.10q) = %v; want ErrNotFound", id, err)
			}
			if _, err := s.PeekOnce(ctx, "late"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a refused PutOnceFor left its value: %v", err)
			}
			if n, _ := pendingIndexOf(t, s, id); n != 0 {
				t.Fatalf("a refused PutOnceFor left %d index entries", n)
			}
		}
		if err := s.PutOnceFor(ctx, "", "x", []byte("v"), time.Minute); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("PutOnceFor without a user: %v; want ErrInvalidUser", err)
		}
		if dump != nil {
			for _, d := range dump() {
				if strings.Contains(d, ada.ID) || strings.Contains(d, "for ada-") {
					t.Fatalf("the backend still holds the purged user's ID or values: %q", d)
				}
			}
		}
	})

	t.Run("a user's pending index does not outlive its values", func(t *testing.T) {
		s, clock, _ := setup(t)
		ada, err := s.CreateUser(ctx, NewUser{})
		if err != nil {
			t.Fatal(err)
		}
		start := clock.Now()
		if err := s.PutOnceFor(ctx, ada.ID, "short", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.PutOnceFor(ctx, ada.ID, "long", []byte("v"), 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		n, until := pendingIndexOf(t, s, ada.ID)
		if n != 2 || until.After(start.Add(10*time.Minute)) || until.Before(start.Add(9*time.Minute)) {
			t.Fatalf("index: %d entries until %v; want 2 until the longest value's expiry %v", n, until.Sub(start), 10*time.Minute)
		}
		// Past the short one's expiry, the next write prunes it.
		clock.Advance(2 * time.Minute)
		if err := s.PutOnceFor(ctx, ada.ID, "third", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeOnce(ctx, "short"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired value taken: %v", err)
		}
		n, until = pendingIndexOf(t, s, ada.ID)
		if n != 2 || until.After(start.Add(10*time.Minute)) {
			t.Fatalf("index: %d entries until %v; want 2 (long, third) until %v at most", n, until.Sub(start), 10*time.Minute)
		}
		// Every value taken or expired: a write leaves only itself, and
		// the index ends with it.
		if _, err := s.TakeOnce(ctx, "long"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Minute)
		if err := s.PutOnceFor(ctx, ada.ID, "last", []byte("v"), 30*time.Second); err != nil {
			t.Fatal(err)
		}
		n, until = pendingIndexOf(t, s, ada.ID)
		if n != 1 || until.After(clock.Now().Add(30*time.Second)) {
			t.Fatalf("index: %d entries until %v from now; want 1 until 30s from now at most", n, until.Sub(clock.Now()))
		}
	})

	t.Run("guests expire unless used, and upgrading removes the expiry", func(t *testing.T) {
		s, clock, _ := setup(t)
		const ttl = 30 * time.Minute
		g, err := s.CreateUser(ctx, NewUser{Anonymous: true, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetUser(ctx, g.ID); err != nil || !got.Anonymous || got.Profile.Email != "" {
			t.Fatalf("GetUser(guest) = %+v, %v; want an anonymous user without email", got, err)
		}
		clock.Advance(ttl - time.Minute)
		if err := s.TouchUser(ctx, g.ID, ttl); err != nil {
			t.Fatal(err)
		}
		clock.Advance(ttl - time.Minute)
		if _, err := s.GetUser(ctx, g.ID); err != nil {
			t.Fatalf("a guest in use expired: %v", err)
		}
		clock.Advance(2 * time.Minute)
		if _, err := s.GetUser(ctx, g.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a guest unused for its TTL: %v; want ErrNotFound", err)
		}
		if err := s.TouchUser(ctx, g.ID, ttl); !errors.Is(err, ErrNotFound) {
			t.Fatalf("TouchUser of an expired guest: %v; want ErrNotFound", err)
		}
		if err := s.UpdateUser(ctx, &User{ID: g.ID, Anonymous: true}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateUser of an expired guest: %v; want ErrNotFound", err)
		}

		// Upgraded in place: same ID, no expiry any more.
		up, _ := s.CreateUser(ctx, NewUser{Anonymous: true, TTL: ttl})
		clock.Advance(time.Minute)
		if err := s.UpdateUser(ctx, &User{ID: up.ID, Anonymous: true, Profile: Profile{Name: "still a guest"}}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(ttl - 2*time.Minute)
		if got, err := s.GetUser(ctx, up.ID); err != nil || got.Profile.Name != "still a guest" {
			t.Fatalf("guest after update = %v, %v", got, err)
		}
		if err := s.UpdateUser(ctx, &User{ID: up.ID, Profile: Profile{Email: "Up@example.com", EmailVerified: true}}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * ttl)
		got, err := s.GetUser(ctx, up.ID)
		if err != nil || got.Anonymous || got.ID != up.ID || got.Profile.Email != "up@example.com" {
			t.Fatalf("upgraded guest = %+v, %v; want the same ID, not anonymous, kept past the guest TTL", got, err)
		}
		if u, err := s.UserByEmail(ctx, "up@example.com"); err != nil || u.ID != up.ID {
			t.Fatalf("upgraded guest's verified email not indexed: %v, %v", u, err)
		}
		// Touching a user who is not a guest gives it no expiry.
		if err := s.TouchUser(ctx, up.ID, time.Minute); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		if _, err := s.GetUser(ctx, up.ID); err != nil {
			t.Fatalf("TouchUser gave a signed-up user an expiry: %v", err)
		}
		// A user created without TTL never expires.
		plain, _ := s.CreateUser(ctx, NewUser{})
		clock.Advance(1000 * time.Hour)
		if _, err := s.GetUser(ctx, plain.ID); err != nil {
			t.Fatalf("a user without TTL expired: %v", err)
		}
	})

	t.Run("ban and unban: the mark survives profile updates", func(t *testing.T) {
		us, clock, _ := setup(t)
		s, ok := us.(Banner)
		if !ok {
			t.Fatalf("%T does not implement Banner", us)
		}
		u, err := us.CreateUser(ctx, NewUser{Profile: Profile{Email: "eve@example.com", EmailVerified: true, Name: "Eve"}})
		if err != nil {
			t.Fatal(err)
		}
		stale := *u
		clock.Advance(time.Minute)
		banned, err := s.SetBanned(ctx, u.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		bannedAt := clock.Now()
		if !banned.Banned || !banned.BannedAt.Equal(bannedAt) || banned.Profile != u.Profile {
			t.Fatalf("SetBanned(true) = %+v; want banned at %v with the profile kept", banned, bannedAt)
		}
		clock.Advance(time.Minute)
		if again, err := s.SetBanned(ctx, u.ID, true); err != nil || !again.BannedAt.Equal(bannedAt) {
			t.Fatalf("banning again = %+v, %v; want the first ban's time kept", again, err)
		}
		// A sign-in that read the user before the ban updates its profile.
		stale.Profile.Name = "Eve Updated"
		if err := us.UpdateUser(ctx, &stale); err != nil {
			t.Fatal(err)
		}
		got, err := us.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Banned || !got.BannedAt.Equal(bannedAt) || got.Profile.Name != "Eve Updated" {
			t.Fatalf("after a profile update: %+v; want still banned at %v, name updated", got, bannedAt)
		}
		if byEmail, err := us.UserByEmail(ctx, "eve@example.com"); err != nil || !byEmail.Banned {
			t.Fatalf("UserByEmail = %+v, %v; want the banned user", byEmail, err)
		}
		unbanned, err := s.SetBanned(ctx, u.ID, false)
		if err != nil || unbanned.Banned || !unbanned.BannedAt.IsZero() {
			t.Fatalf("SetBanned(false) = %+v, %v; want not banned, no time", unbanned, err)
		}
		// An update from a copy read while banned does not ban again.
		got.Profile.Name = "Eve Again"
		if err := us.UpdateUser(ctx, got); err != nil {
			t.Fatal(err)
		}
		if after, err := us.GetUser(ctx, u.ID); err != nil || after.Banned || after.Profile.Name != "Eve Again" {
			t.Fatalf("after unban and update: %+v, %v; want not banned", after, err)
		}
		for _, id := range []string{"", "nobody", strings.Repeat("x", 1000)} {
			if _, err := s.SetBanned(ctx, id, true); !errors.Is(err, ErrNotFound) {
				t.Errorf("SetBanned(%.10q) = %v; want ErrNotFound", id, err)
			}
		}
	})

	t.Run("limiter under concurrency", func(t *testing.T) {
		us, _, _ := setup(t)
		l := us.(Limiter)
		var allowed atomic.Int32
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				if ok, _, err := l.Allow(ctx, "global:send", Rate{Events: 10, Per: time.Hour}); err == nil && ok {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 10 {
			t.Fatalf("%d of 40 concurrent events allowed; want 10", allowed.Load())
		}
	})

	t.Run("import", func(t *testing.T) { runImportConformance(t, setup) })

	t.Run("rate limit under concurrency", func(t *testing.T) {
		s, _, _ := setup(t)
		var allowed atomic.Int32
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				if ok, err := s.RateHit(ctx, "burst", 10, time.Hour); err == nil && ok {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 10 {
			t.Fatalf("%d of 40 concurrent hits allowed; want exactly 10", allowed.Load())
		}
	})
}

// pendingIndexOf reports how many entries the user's pending index holds
// and when, by the store's clock, the index itself ends (zero: no index).
func pendingIndexOf(t *testing.T, us UserStore, userID string) (int, time.Time) {
	t.Helper()
	switch s := us.(type) {
	case *MemoryStore:
		u := s.users
		u.mu.Lock()
		defer u.mu.Unlock()
		var until time.Time
		for k := range u.pending[userID] {
			if e := u.once[k].expiresAt; e.After(until) {
				until = e
			}
		}
		return len(u.pending[userID]), until
	case *RedisStore:
		ctx := context.Background()
		key := s.pendingKey(userID)
		n, err := s.client.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		ttl, err := s.client.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < 0 {
			if len(n) > 0 {
				t.Fatalf("the pending index of %d entries has no TTL (%v)", len(n), ttl)
			}
			return 0, time.Time{}
		}
		return len(n), s.opts.now().Add(ttl)
	}
	t.Fatalf("%T: cannot inspect its pending index", us)
	return 0, time.Time{}
}

func TestMemoryUserConformance(t *testing.T) {
	runUserConformance(t, func(t *testing.T, opts Options) (Store, func() []string) {
		m := NewMemoryStore(opts)
		return m, func() []string {
			u := m.users
			u.mu.Lock()
			defer u.mu.Unlock()
			var out []string
			for k, e := range u.once {
				out = append(out, k, string(e.value))
			}
			for k := range u.rates {
				out = append(out, k)
			}
			for k, a := range u.accounts {
				out = append(out, k, a.UserID)
			}
			m.factors.mu.Lock()
			defer m.factors.mu.Unlock()
			for id := range m.factors.users {
				out = append(out, "mem:factors:"+id)
			}
			return out
		}
	})
}

func TestRedisUserConformance(t *testing.T) {
	srv := redistest.StartServer(t)
	runUserConformance(t, redisBackend(srv.Addr, false, -1))
}

func TestRedisUserKeysShareTheSessionsHashTag(t *testing.T) {
	srv := redistest.StartServer(t)
	prefix := uniquePrefix()
	s := newTestRedisStore(t, srv.Addr, false, prefix, -1, Options{})
	ctx := context.Background()
	u, err := s.CreateUser(ctx, NewUser{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, NewSession{UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	want := "{" + userTag(u.ID) + "}"
	keys := newTestClient(t, srv.Addr, false).Keys(ctx, prefix+"*").Val()
	if len(keys) != 3 {
		t.Fatalf("keys %v; want the user, a session and the index", keys)
	}
	for _, k := range keys {
		if !strings.Contains(k, want) {
			t.Fatalf("key %q is not on the user's slot %s", k, want)
		}
	}
	// The index of the user's pending values is on it too (the values,
	// found by their secret, are not).
	if err := s.PutOnceFor(ctx, u.ID, "secret", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	pending := newTestClient(t, srv.Addr, false).Keys(ctx, prefix+"*:pending:*").Val()
	if len(pending) != 1 || !strings.HasPrefix(pending[0], prefix+want+":pending:") {
		t.Fatalf("pending index keys %v; want one on the user's slot %s", pending, want)
	}
}
