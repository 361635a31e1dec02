// Package commonpasswords knows the 10,000 most common passwords (SecLists;
// README.md names the copy and its license), embedded in the binary, so that
// sign-up, reset and change can refuse the ones attackers try first.
package commonpasswords

import (
	_ "embed"
	"slices"
	"strings"
	"sync"
)

//go:embed passwords.txt
var list string

// sorted is the list lowercased and sorted, built on first use (about
// 160 KB of slice headers over the embedded text).
var sorted = sync.OnceValue(func() []string {
	words := strings.Fields(strings.ToLower(list))
	slices.Sort(words)
	return slices.Compact(words)
})

// Len is how many distinct passwords the list holds, letter case aside.
func Len() int { return len(sorted()) }

// IsCommon reports whether password, in any letter case, is on the list.
func IsCommon(password string) bool {
	_, found := slices.BinarySearch(sorted(), strings.ToLower(password))
	return found
}
