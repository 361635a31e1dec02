package signin

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// TestImportedPasswordSignInRehashes: a user imported with another
// system's hash (made by the real package: passwordhash/testdata) signs
// in with its original password under its original ID; the hash is then
// the gateway's argon2id (of the password in the form the source
// normalized it to); a wrong password is refused before and after.
func TestImportedPasswordSignInRehashes(t *testing.T) {
	f, err := os.Open("../passwordhash/testdata/incumbents.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		var h struct{ Scheme, Source, Password, Hash string }
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			t.Fatal(err)
		}
		if h.Password != "correct horse battery staple" {
			continue
		}
		t.Run(h.Source, func(t *testing.T) {
			e := newPasswordEnv(t)
			ctx := context.Background()
			id := "jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7" + string(rune('a'+i))
			secret, err := passwordhash.Tag(h.Scheme, h.Hash)
			if err != nil {
				t.Fatal(err)
			}
			in := session.ImportedUser{ID: id, Profile: session.Profile{Email: "ada@example.com", EmailVerified: true},
				Accounts: []session.Account{{Provider: ProviderPassword, ProviderAccountID: "ada@example.com", Secret: secret}}}
			if _, err := e.store.(session.UserImporter).ImportUser(ctx, in, session.ImportOptions{}); err != nil {
				t.Fatal(err)
			}
			if resp, _ := newBrowser(t).Fetch(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", h.Password+"!", "")); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password against the imported hash: %d; want 401", resp.StatusCode)
			}
			b := newBrowser(t)
			resp, _ := b.Post(e.origin+"/auth/signin/password", passwordForm("signin", "Ada@Example.com", h.Password, ""))
			if !succeeded(resp) {
				t.Fatalf("sign-in with the original password: %d", resp.StatusCode)
			}
			if who, ok := b.Whoami(e.origin); !ok || who.UserID != id {
				t.Fatalf("signed in as %+v; want the imported ID %s", who, id)
			}
			// The gateway's argon2id of the same normal form the source hashed.
			form := map[string]string{passwordhash.ScryptNFKC: passwordhash.NFKC, passwordhash.Argon2idNFC: passwordhash.NFC}[h.Scheme]
			acct, err := e.store.GetAccount(ctx, ProviderPassword, "ada@example.com")
			if err != nil || !strings.HasPrefix(acct.Secret, "{"+form+"}$argon2id$v=19$m=64,t=1,p=1$") {
				t.Fatalf("after sign-in the stored hash is %.40q, %v; want the gateway's argon2id tagged %s", acct.Secret, err, form)
			}
			if resp, _ := newBrowser(t).Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", h.Password, "")); !succeeded(resp) {
				t.Fatalf("sign-in against the rehashed password: %d", resp.StatusCode)
			}
			if resp, _ := newBrowser(t).Fetch(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", h.Password+"!", "")); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password against the rehashed one: %d; want 401", resp.StatusCode)
			}
		})
	}
}
