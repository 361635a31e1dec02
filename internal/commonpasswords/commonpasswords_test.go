package commonpasswords

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestTheShippedList is the copy README.md names, unchanged.
func TestTheShippedList(t *testing.T) {
	sum := sha256.Sum256([]byte(list))
	if got := hex.EncodeToString(sum[:]); got != "49f08c78f59d1ff10a73195ea8dc15c5c64a66d7db858e67067338ba436d9009" {
		t.Fatalf("passwords.txt has SHA-256 %s; update README.md with its source if it changed on purpose", got)
	}
	if n := Len(); n < 9900 || n > 10000 {
		t.Fatalf("%d distinct passwords; want about 10,000", n)
	}
}

func TestIsCommon(t *testing.T) {
	for pw, want := range map[string]bool{
		"password":                     true,
		"PASSWORD":                     true,
		"password1":                    true,
		"12345678":                     true,
		"qwertyuiop":                   true,
		"iloveyou":                     true,
		"1Dragon":                      true,
		"":                             false,
		"correct horse battery staple": false,
		"Xk7#pQ2!vL9m":                 false,
	} {
		if got := IsCommon(pw); got != want {
			t.Errorf("IsCommon(%q) = %v; want %v", pw, got, want)
		}
	}
}

func BenchmarkIsCommon(b *testing.B) {
	IsCommon("warm up")
	for b.Loop() {
		IsCommon("correct horse battery staple")
	}
}
