package importer

import (
	"testing"
	"testing/fstest"
)

// FuzzRead: whatever an export's rows hold, Read does not panic, and each
// user it returns has an ID a token can carry and accounts with a
// provider and an account ID.
func FuzzRead(f *testing.F) {
	f.Add(`{"_id":"u1","email":"a@example.com","emailVerificationTime":1.0}`, `{"userId":"u1","provider":"password","providerAccountId":"a@example.com","secret":"`+scryptHash+`"}`, `{"userId":"u1","providerId":"credential","password":"x"}`)
	f.Add(`{"_id":"u|1"}`, `{"userId":1}`, `[`)
	f.Add(`{"id":"x","emailVerified":"2025-01-01T00:00:00Z","createdAt":"nope"}`, `{"userId":"x","type":"webauthn"}`, `{}`)
	f.Fuzz(func(t *testing.T, users, accounts, other string) {
		fsys := fstest.MapFS{
			"users/documents.jsonl":        {Data: []byte(users)},
			"authAccounts/documents.jsonl": {Data: []byte(accounts)},
			"accounts/documents.jsonl":     {Data: []byte(accounts)},
			"user.jsonl":                   {Data: []byte(users)},
			"account.jsonl":                {Data: []byte(other)},
			"_components/authPassword/passwords/documents.jsonl": {Data: []byte(other)},
		}
		for _, src := range Sources {
			res, err := Read(fsys, Options{Source: src, Map: map[string]string{"resend": "email"}})
			if err != nil {
				continue
			}
			for _, u := range res.Users {
				if u.ID == "" || checkID(u.ID) != nil {
					t.Fatalf("%s: user ID %q passed", src, u.ID)
				}
				for _, a := range u.Accounts {
					if a.Provider == "" || a.ProviderAccountID == "" {
						t.Fatalf("%s: account %+v passed", src, a)
					}
				}
			}
		}
	})
}
