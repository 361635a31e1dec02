package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
)

// Incumbents' user IDs: a Convex document ID (Convex Auth, the Auth.js
// adapter, @convex-dev/better-auth), Better Auth's generateId, a UUID and
// an app's own ID (--sub-from).
var incumbentIDs = []string{
	"jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a",
	"kX9vB2nQ7mLp4RtY8wZc3HdF6gJs1AeU",
	"0f8fad5b-d9cb-469f-a165-70867728950e",
	"user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
}

// importedSecret is a lucia/Better Auth scrypt hash, tagged; n varies it.
func importedSecret(t *testing.T, n int) string {
	t.Helper()
	salt := strings.Repeat(string("0123456789abcdef"[n%16]), 32)
	s, err := passwordhash.Tag(passwordhash.ScryptNFKC, salt+":"+strings.Repeat("ab", 64))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runImportConformance checks UserImporter; runUserConformance runs it on
// every store.
func runImportConformance(t *testing.T, setup func(t *testing.T) (UserStore, *fakeClock, func() []string)) {
	ctx := context.Background()
	importer := func(t *testing.T) (UserImporter, UserStore, *fakeClock) {
		us, clock, _ := setup(t)
		im, ok := us.(UserImporter)
		if !ok {
			t.Fatalf("%T does not implement UserImporter", us)
		}
		return im, us, clock
	}
	created := time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

	t.Run("import keeps the incumbent's ID, creation time, profile and accounts", func(t *testing.T) {
		im, us, _ := importer(t)
		for i, id := range incumbentIDs {
			email := "user" + string(rune('a'+i)) + "@example.com"
			in := ImportedUser{ID: id, CreatedAt: created, Profile: Profile{Email: " " + strings.ToUpper(email), EmailVerified: true, Name: "N", Picture: "https://example.com/p.png"},
				Accounts: []Account{{Provider: "password", ProviderAccountID: email, Secret: importedSecret(t, i)}, {Provider: "github", ProviderAccountID: "1234" + string(rune('0'+i))}}}
			res, err := im.ImportUser(ctx, in, ImportOptions{})
			if err != nil || res != ImportCreated {
				t.Fatalf("ImportUser(%s) = %q, %v; want created", id, res, err)
			}
			u, err := us.GetUser(ctx, id)
			if err != nil || u.ID != id || !u.CreatedAt.Equal(created) || u.Profile.Email != email || u.Anonymous {
				t.Fatalf("GetUser(%s) = %+v, %v; want the ID, creation time and normalised email kept", id, u, err)
			}
			if byEmail, err := us.UserByEmail(ctx, email); err != nil || byEmail.ID != id {
				t.Fatalf("UserByEmail = %v, %v; want %s", byEmail, err, id)
			}
			a, err := us.GetAccount(ctx, "password", email)
			if err != nil || a.UserID != id || a.Secret != importedSecret(t, i) {
				t.Fatalf("password account %+v, %v", a, err)
			}
			if accts, _ := us.AccountsOf(ctx, id); len(accts) != 2 {
				t.Fatalf("AccountsOf(%s) = %+v; want both", id, accts)
			}
			// Sessions of the ID work as the gateway's own.
			store := us.(Store)
			token, sess, err := store.Create(ctx, NewSession{UserID: id, Provider: "password"})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := store.Lookup(ctx, token); err != nil || got.UserID != id {
				t.Fatalf("Lookup = %+v, %v", got, err)
			}
			if list, err := store.List(ctx, id); err != nil || len(list) != 1 || list[0].ID != sess.ID {
				t.Fatalf("List(%s) = %v, %v", id, list, err)
			}
			if n, err := store.DeleteUser(ctx, id, ""); err != nil || n != 1 {
				t.Fatalf("DeleteUser(%s) = %d, %v", id, n, err)
			}
		}
	})

	t.Run("re-import changes nothing; a changed row updates", func(t *testing.T) {
		im, us, _ := importer(t)
		id := incumbentIDs[0]
		in := ImportedUser{ID: id, CreatedAt: created, Profile: Profile{Email: "ada@example.com", EmailVerified: true, Name: "Ada"},
			Accounts: []Account{{Provider: "password", ProviderAccountID: "ada@example.com", Secret: importedSecret(t, 1)}}}
		if res, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil || res != ImportCreated {
			t.Fatalf("first import: %q, %v", res, err)
		}
		if res, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil || res != ImportUnchanged {
			t.Fatalf("same import again: %q, %v; want unchanged", res, err)
		}
		// A new name, a new imported hash and a new account update.
		in.Profile.Name = "Ada Lovelace"
		in.Accounts[0].Secret = importedSecret(t, 2)
		in.Accounts = append(in.Accounts, Account{Provider: "google", ProviderAccountID: "10769150350006150715113082367"})
		in.CreatedAt = created.Add(time.Hour)
		if res, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil || res != ImportUpdated {
			t.Fatalf("changed import: %q, %v; want updated", res, err)
		}
		u, _ := us.GetUser(ctx, id)
		if u.Profile.Name != "Ada Lovelace" || !u.CreatedAt.Equal(created) {
			t.Fatalf("after the update: %+v; want the new name and the first creation time", u)
		}
		if a, _ := us.GetAccount(ctx, "password", "ada@example.com"); a == nil || a.Secret != importedSecret(t, 2) {
			t.Fatalf("the imported secret was not replaced: %+v", a)
		}
		if a, err := us.GetAccount(ctx, "google", "10769150350006150715113082367"); err != nil || a.UserID != id {
			t.Fatalf("the new account: %+v, %v", a, err)
		}
		// Once the gateway rehashed the password (its argon2id of the NFKC
		// form), an import keeps it.
		rehashed, err := passwordhash.Tag(passwordhash.NFKC, "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
		if err != nil {
			t.Fatal(err)
		}
		if err := us.(AccountSecretSetter).SetAccountSecret(ctx, "password", "ada@example.com", id, rehashed); err != nil {
			t.Fatal(err)
		}
		in.Accounts[0].Secret = importedSecret(t, 3)
		if res, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil || res != ImportUnchanged {
			t.Fatalf("import over a rehashed password: %q, %v; want unchanged", res, err)
		}
		if a, _ := us.GetAccount(ctx, "password", "ada@example.com"); a.Secret != rehashed {
			t.Fatal("an import replaced the gateway's own hash")
		}
	})

	t.Run("an email change moves the email's accounts", func(t *testing.T) {
		im, us, _ := importer(t)
		id := incumbentIDs[1]
		in := ImportedUser{ID: id, Profile: Profile{Email: "old@example.com", EmailVerified: true},
			Accounts: []Account{{Provider: "password", ProviderAccountID: "old@example.com", Secret: importedSecret(t, 1)}, {Provider: "github", ProviderAccountID: "42"}}}
		if _, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		in.Profile.Email = "new@example.com"
		in.Accounts[0].ProviderAccountID = "new@example.com"
		if res, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil || res != ImportUpdated {
			t.Fatalf("email change: %q, %v", res, err)
		}
		if _, err := us.GetAccount(ctx, "password", "old@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the old email's password account is still bound: %v", err)
		}
		accts, _ := us.AccountsOf(ctx, id)
		if len(accts) != 2 || accts[0].Provider != "github" || accts[1].ProviderAccountID != "new@example.com" {
			t.Fatalf("accounts %+v; want github and the new email's password", accts)
		}
		if _, err := us.UserByEmail(ctx, "old@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the old email still finds the user: %v", err)
		}
	})

	t.Run("a conflicting import writes nothing", func(t *testing.T) {
		im, us, _ := importer(t)
		holder, err := us.CreateUser(ctx, NewUser{Profile: Profile{Email: "taken@example.com", EmailVerified: true}})
		if err != nil {
			t.Fatal(err)
		}
		if err := us.CreateAccount(ctx, Account{Provider: "github", ProviderAccountID: "7", UserID: holder.ID}); err != nil {
			t.Fatal(err)
		}
		cases := map[string]ImportedUser{
			"verified email of another user": {ID: incumbentIDs[0], Profile: Profile{Email: "Taken@example.com", EmailVerified: true},
				Accounts: []Account{{Provider: "google", ProviderAccountID: "g1"}}},
			"account of another user": {ID: incumbentIDs[1], Profile: Profile{Email: "free@example.com", EmailVerified: true},
				Accounts: []Account{{Provider: "google", ProviderAccountID: "g2"}, {Provider: "github", ProviderAccountID: "7"}}},
		}
		for name, in := range cases {
			for _, dry := range []bool{true, false} {
				if res, err := im.ImportUser(ctx, in, ImportOptions{DryRun: dry}); !errors.Is(err, ErrImportConflict) || !strings.Contains(err.Error(), holder.ID) {
					t.Fatalf("%s (dry run %v): %q, %v; want ErrImportConflict naming the holder", name, dry, res, err)
				}
			}
			if _, err := us.GetUser(ctx, in.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: the user was written: %v", name, err)
			}
			if _, err := us.GetAccount(ctx, "google", in.Accounts[0].ProviderAccountID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: an account was bound: %v", name, err)
			}
		}
		// An unverified email of another user's verified one is no conflict.
		if res, err := im.ImportUser(ctx, ImportedUser{ID: incumbentIDs[2], Profile: Profile{Email: "taken@example.com"}}, ImportOptions{}); err != nil || res != ImportCreated {
			t.Fatalf("unverified email: %q, %v", res, err)
		}
		if u, _ := us.UserByEmail(ctx, "taken@example.com"); u == nil || u.ID != holder.ID {
			t.Fatal("the verified email's holder changed")
		}
	})

	t.Run("a dry run reports and writes nothing", func(t *testing.T) {
		im, us, _ := importer(t)
		in := ImportedUser{ID: incumbentIDs[3], Profile: Profile{Email: "dry@example.com", EmailVerified: true},
			Accounts: []Account{{Provider: "password", ProviderAccountID: "dry@example.com", Secret: importedSecret(t, 1)}}}
		if res, err := im.ImportUser(ctx, in, ImportOptions{DryRun: true}); err != nil || res != ImportCreated {
			t.Fatalf("dry run: %q, %v; want created", res, err)
		}
		if _, err := us.GetUser(ctx, in.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a dry run wrote the user: %v", err)
		}
		if _, err := us.GetAccount(ctx, "password", "dry@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a dry run bound an account: %v", err)
		}
		if _, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		in.Profile.Name = "Dry"
		if res, err := im.ImportUser(ctx, in, ImportOptions{DryRun: true}); err != nil || res != ImportUpdated {
			t.Fatalf("dry run of a change: %q, %v; want updated", res, err)
		}
		if u, _ := us.GetUser(ctx, in.ID); u.Profile.Name != "" {
			t.Fatal("a dry run updated the user")
		}
	})

	t.Run("an import keeps a ban", func(t *testing.T) {
		im, us, _ := importer(t)
		in := ImportedUser{ID: incumbentIDs[0], Profile: Profile{Name: "Mallory"}}
		if _, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := us.(Banner).SetBanned(ctx, in.ID, true); err != nil {
			t.Fatal(err)
		}
		in.Profile.Name = "Mallory M."
		if res, err := im.ImportUser(ctx, in, ImportOptions{}); err != nil || res != ImportUpdated {
			t.Fatalf("re-import: %q, %v", res, err)
		}
		if u, _ := us.GetUser(ctx, in.ID); !u.Banned || u.Profile.Name != "Mallory M." {
			t.Fatalf("after re-import: %+v; want still banned, renamed", u)
		}
	})

	t.Run("invalid imports", func(t *testing.T) {
		im, us, _ := importer(t)
		bad := map[string]ImportedUser{
			"no ID":              {},
			"ID too long":        {ID: strings.Repeat("x", MaxUserIDBytes+1)},
			"name too long":      {ID: "u1", Profile: Profile{Name: strings.Repeat("n", MaxNameBytes+1)}},
			"account twice":      {ID: "u2", Accounts: []Account{{Provider: "github", ProviderAccountID: "1"}, {Provider: "github", ProviderAccountID: "1"}}},
			"account without ID": {ID: "u3", Accounts: []Account{{Provider: "github"}}},
		}
		for name, in := range bad {
			if res, err := im.ImportUser(ctx, in, ImportOptions{}); !errors.Is(err, ErrInvalidUser) {
				t.Errorf("%s: %q, %v; want ErrInvalidUser", name, res, err)
			}
			if in.ID != "" && len(in.ID) <= MaxUserIDBytes {
				if _, err := us.GetUser(ctx, in.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: written", name)
				}
			}
		}
	})
}
