package passwordhash

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// incumbentHash is one line of testdata/incumbents.jsonl, written by
// e2e/incumbents/hashes.mjs with the real packages (lucia's Scrypt,
// better-auth's hashPassword, password-hash-wasm's argon2id); the e2e
// import test runs that script afresh.
type incumbentHash struct {
	Scheme, Source, Password, Hash string
}

func incumbentHashes(t testing.TB) []incumbentHash {
	t.Helper()
	f, err := os.Open("testdata/incumbents.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []incumbentHash
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var h incumbentHash
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	if len(out) < 6 {
		t.Fatalf("%d fixtures; want the three sources for two passwords", len(out))
	}
	return out
}

// variants are other spellings of a fixture password, and whether each
// scheme's normalization makes them the same password.
func variants(password string) map[string]map[string]bool {
	if password != "Café ﬁ ①" {
		return map[string]map[string]bool{password + " ": {ScryptNFKC: false, Argon2idNFC: false}}
	}
	return map[string]map[string]bool{
		"Cafe\u0301 ﬁ ①": {ScryptNFKC: true, Argon2idNFC: true},  // decomposed é: NFC and NFKC compose it
		"Café fi 1":      {ScryptNFKC: true, Argon2idNFC: false}, // compatibility forms: NFKC only
	}
}

func TestIncumbentHashesVerify(t *testing.T) {
	for _, h := range incumbentHashes(t) {
		t.Run(h.Source+"/"+h.Password, func(t *testing.T) {
			t.Parallel()
			stored, err := Tag(h.Scheme, h.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if scheme, err := SchemeOf(stored); err != nil || scheme != h.Scheme {
				t.Fatalf("SchemeOf = %q, %v; want %q", scheme, err, h.Scheme)
			}
			if ok, err := Verify(h.Password, stored); err != nil || !ok {
				t.Fatalf("Verify(original) = %v, %v", ok, err)
			}
			if !Imported(stored) {
				t.Fatal("an imported hash is not Imported")
			}
			for pw, want := range variants(h.Password) {
				if ok, err := Verify(pw, stored); err != nil || ok != want[h.Scheme] {
					t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want[h.Scheme])
				}
			}
			// Untagged, a scrypt hash is no stored hash; an argon2id one reads
			// as the gateway's own, without normalization: the import tags.
			ok, err := Verify(h.Password, h.Hash)
			if h.Scheme == ScryptNFKC && (ok || !errors.Is(err, ErrUnknownScheme)) || h.Scheme == Argon2idNFC && Imported(h.Hash) {
				t.Errorf("the untagged hash: %v, %v", ok, err)
			}

			// The rehash is the gateway's argon2id of the same normal form:
			// the same spellings still match, and it needs no rehash again.
			rehashed, err := Rehash(h.Password, stored, func(p string) (string, error) { return gatewayHash(t, p), nil })
			wantScheme := map[string]string{ScryptNFKC: NFKC, Argon2idNFC: NFC}[h.Scheme]
			if scheme, _ := SchemeOf(rehashed); err != nil || scheme != wantScheme || !strings.HasPrefix(rehashed, "{"+wantScheme+"}$argon2id$v=19$m=64,t=1,p=1$") {
				t.Fatalf("Rehash = %.40q, %v; want the gateway's argon2id tagged %s", rehashed, err, wantScheme)
			}
			if Imported(rehashed) {
				t.Error("the rehashed hash counts as imported")
			}
			for pw, want := range variants(h.Password) {
				if ok, err := Verify(pw, rehashed); err != nil || ok != want[h.Scheme] {
					t.Errorf("after the rehash, Verify(%q) = %v, %v; want %v", pw, ok, err, want[h.Scheme])
				}
			}
			if ok, err := Verify(h.Password, rehashed); !ok || err != nil {
				t.Errorf("after the rehash the original password: %v, %v", ok, err)
			}
		})
	}
}

// gatewayHash is a PHC argon2id string as the gateway writes it
// (signin.HashPassword).
func gatewayHash(t testing.TB, password string) string {
	t.Helper()
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", phcB64.EncodeToString(salt), phcB64.EncodeToString(key))
}

func TestGatewayArgon2idNeedsNoRehash(t *testing.T) {
	stored := gatewayHash(t, "Café")
	for pw, want := range map[string]bool{"Café": true, "Cafe\u0301": false, "": false} {
		if ok, err := Verify(pw, stored); err != nil || ok != want {
			t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if scheme, _ := SchemeOf(stored); scheme != Argon2id || Imported(stored) {
		t.Fatalf("SchemeOf = %q, Imported %v; want the gateway's own", scheme, Imported(stored))
	}
	if _, err := Rehash("Café", stored, func(string) (string, error) { return gatewayHash(t, "x"), nil }); err == nil {
		t.Fatal("Rehash of the gateway's own hash")
	}
}

func TestUnknownSchemesAreRefused(t *testing.T) {
	bad := map[string]string{
		"bcrypt":          "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":         "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"huge memory":     "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"bad salt":        "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaA",
		"lucia legacy s2": "s2:0ecef5c22db5ab382cfc774d545aa27e:878a",
		"short key":       "0ecef5c22db5ab382cfc774d545aa27e:878a941c",
		"salt not hex":    "zzcef5c22db5ab382cfc774d545aa27e:" + strings.Repeat("ab", 64),
		"plain":           "hunter2",
		"empty":           "",
	}
	for name, h := range bad {
		for _, scheme := range []string{ScryptNFKC, Argon2idNFC} {
			if _, err := Tag(scheme, h); !errors.Is(err, ErrUnknownScheme) || strings.Contains(err.Error(), h) && h != "" {
				t.Errorf("Tag(%s, %s) = %v; want ErrUnknownScheme that does not quote the hash", scheme, name, err)
			}
		}
		if ok, err := Verify("x", h); ok || err == nil || Imported(h) {
			t.Errorf("Verify on %s = %v, %v; want an error", name, ok, err)
		}
	}
	if _, err := Tag("bcrypt", "x"); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("Tag with an unknown scheme: %v", err)
	}
	for _, stored := range []string{"{bcrypt}$2b$10$x", "{scrypt-nfkc}not:hex", "{argon2id-nfc}$argon2id$v=19$broken"} {
		if ok, err := Verify("x", stored); ok || err == nil {
			t.Errorf("Verify(%q) = %v, %v; want an error", stored, ok, err)
		}
	}
}

func TestDescribeNamesTheShape(t *testing.T) {
	_, err := Tag(ScryptNFKC, "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	if err == nil || !strings.Contains(err.Error(), "bcrypt") || !strings.Contains(err.Error(), "<hex salt>:<128 hex digits>") {
		t.Fatalf("error %v; want it to say what was expected and that this is bcrypt", err)
	}
}

// BenchmarkVerify shows what one verification costs in each scheme: each
// runs in one of signin's hashing slots.
func BenchmarkVerify(b *testing.B) {
	for _, h := range incumbentHashes(b)[:3] {
		stored, err := Tag(h.Scheme, h.Hash)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(h.Source, func(b *testing.B) {
			for b.Loop() {
				if ok, err := Verify(h.Password, stored); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
