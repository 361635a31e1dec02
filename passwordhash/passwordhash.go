// Package passwordhash verifies stored password hashes: the gateway's own
// argon2id, and the schemes of the systems users are imported from, each
// kept as that system wrote it and tagged with its scheme. A password
// checked against an imported hash is rehashed by the caller into the
// gateway's scheme. No Caddy import.
package passwordhash

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/scrypt"
	"golang.org/x/text/unicode/norm"
)

// Schemes. A stored hash of the gateway's own scheme is a bare PHC string;
// another is "{<scheme>}<hash>". An import keeps each hash as the other
// system wrote it, tagged with its scheme; the first sign-in replaces it
// (Rehash) with the gateway's argon2id of the password in the form that
// system normalized it to, tagged with that form, so that a password typed
// in another Unicode form keeps working.
const (
	// Argon2id is the gateway's: a PHC argon2id string of the password as
	// typed.
	Argon2id = "argon2id"
	// NFC and NFKC are the gateway's argon2id of the password's NFC or
	// NFKC form: what imported hashes become.
	NFC  = "nfc"
	NFKC = "nfkc"
	// Argon2idNFC is Convex Auth 2.x's password component, imported: a PHC
	// argon2id string of the password's NFC form.
	Argon2idNFC = "argon2id-nfc"
	// ScryptNFKC is lucia's Scrypt (Convex Auth 0.0.x's Password
	// provider) and @better-auth/utils' hashPassword (Better Auth),
	// imported: "<salt>:<key>" in hex, the key being scrypt (N=16384, r=16,
	// p=1, 64 bytes) of the password's NFKC form, salted with the bytes of
	// the salt's hex string itself.
	ScryptNFKC = "scrypt-nfkc"
)

// Fixed scrypt parameters of ScryptNFKC (both lucia and Better Auth).
const (
	scryptN      = 16384
	scryptR      = 16
	scryptP      = 1
	scryptKeyLen = 64
)

// Bounds on parameters read from a stored hash, so a corrupt or hostile
// record cannot make a verification take gigabytes or minutes.
const (
	maxArgon2Memory  = 1 << 20 // 1 GiB
	maxArgon2Time    = 16
	maxArgon2Threads = 16
	maxArgon2KeyLen  = 64
	maxArgon2SaltLen = 64
	minScryptSalt    = 16 // hex characters
	maxScryptSalt    = 64
)

// ErrUnknownScheme means a stored or imported hash is in no scheme this
// package verifies.
var ErrUnknownScheme = errors.New("passwordhash: unknown hash scheme")

var phcB64 = base64.RawStdEncoding

// Tag returns native, a hash another system wrote in scheme, as the gateway
// stores it. A hash that is not a well-formed one of scheme is refused with
// ErrUnknownScheme and what it looks like (never the hash itself).
func Tag(scheme, native string) (string, error) {
	var err error
	switch scheme {
	case Argon2idNFC, NFC, NFKC:
		_, _, _, err = parsePHC(native)
	case ScryptNFKC:
		_, _, err = parseScrypt(native)
	default:
		return "", fmt.Errorf("%w %q: the gateway imports %s and %s", ErrUnknownScheme, scheme, Argon2idNFC, ScryptNFKC)
	}
	if err != nil {
		return "", fmt.Errorf("%w: expected %s, and %s", ErrUnknownScheme, expected[scheme], describe(native))
	}
	return "{" + scheme + "}" + native, nil
}

// expected says what each importable scheme looks like.
var expected = map[string]string{
	Argon2idNFC: phcShape,
	NFC:         phcShape,
	NFKC:        phcShape,
	ScryptNFKC:  "a lucia/Better Auth scrypt hash (<hex salt>:<128 hex digits>)",
}

const phcShape = "an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>)"

// describe names what a hash looks like without quoting it.
func describe(h string) string {
	switch {
	case h == "":
		return "this one is empty"
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		return "this one is bcrypt"
	case strings.HasPrefix(h, "$argon2id$"):
		return "this one is a malformed or out-of-bounds argon2id PHC string"
	case strings.HasPrefix(h, "$"):
		id, _, _ := strings.Cut(h[1:], "$")
		return fmt.Sprintf("this one is a PHC string of %q", truncate(id, 20))
	case strings.Count(h, ":") == 1:
		return "this one is a malformed salt:key"
	}
	return fmt.Sprintf("this one is %d characters of neither form", len(h))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// SchemeOf names the scheme of a stored hash.
func SchemeOf(stored string) (string, error) {
	if strings.HasPrefix(stored, "$argon2id$") {
		return Argon2id, nil
	}
	if rest, ok := strings.CutPrefix(stored, "{"); ok {
		if scheme, _, ok := strings.Cut(rest, "}"); ok && expected[scheme] != "" {
			return scheme, nil
		}
	}
	return "", fmt.Errorf("%w: the stored hash is not the gateway's argon2id nor a tagged import; %s", ErrUnknownScheme, describe(stored))
}

// Verify reports whether password matches the stored hash, comparing in
// constant time. An error means the stored hash is unreadable (the
// password does not match).
func Verify(password, stored string) (bool, error) {
	scheme, native, err := split(stored)
	if err != nil {
		return false, err
	}
	switch scheme {
	case ScryptNFKC:
		return verifyScrypt(normalize(scheme, password), native)
	}
	return verifyArgon2id(normalize(scheme, password), native)
}

// split returns a stored hash's scheme and the hash without its tag.
func split(stored string) (scheme, native string, err error) {
	scheme, err = SchemeOf(stored)
	if err != nil || scheme == Argon2id {
		return scheme, stored, err
	}
	return scheme, stored[len(scheme)+2:], nil
}

// normalize puts a password in the form scheme hashes.
func normalize(scheme, password string) string {
	switch scheme {
	case Argon2idNFC, NFC:
		return norm.NFC.String(password)
	case ScryptNFKC, NFKC:
		return norm.NFKC.String(password)
	}
	return password
}

// Imported reports whether a stored hash is another system's, kept as it
// wrote it: one a matching password should replace (Rehash), and one a
// later import may replace.
func Imported(stored string) bool {
	scheme, err := SchemeOf(stored)
	return err == nil && (scheme == Argon2idNFC || scheme == ScryptNFKC)
}

// Rehash returns the stored hash that replaces an imported one, which
// password matched: hash (the gateway's argon2id, a PHC string) of the
// password in the form the import's scheme normalized it to, tagged with
// that form.
func Rehash(password, stored string, hash func(password string) (string, error)) (string, error) {
	scheme, err := SchemeOf(stored)
	if err != nil {
		return "", err
	}
	var form string
	switch scheme {
	case Argon2idNFC:
		form = NFC
	case ScryptNFKC:
		form = NFKC
	default:
		return "", errors.New("passwordhash: only imported hashes are rehashed")
	}
	native, err := hash(normalize(form, password))
	if err != nil {
		return "", err
	}
	return Tag(form, native)
}

func verifyArgon2id(password, encoded string) (bool, error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func verifyScrypt(password, encoded string) (bool, error) {
	salt, want, err := parseScrypt(encoded)
	if err != nil {
		return false, err
	}
	got, err := scrypt.Key([]byte(password), salt, scryptN, scryptR, scryptP, scryptKeyLen)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// argon2Params are the costs a PHC string carries.
type argon2Params struct {
	memory, time uint32
	threads      uint8
}

var errBadPHC = errors.New("passwordhash: the hash is not a well-formed PHC argon2id string (v=19, bounded m, t, p)")

// parsePHC reads $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>.
func parsePHC(encoded string) (argon2Params, []byte, []byte, error) {
	var p argon2Params
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadPHC
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errBadPHC
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &threads); err != nil || n != 3 {
		return p, nil, nil, errBadPHC
	}
	if p.memory < 8 || p.memory > maxArgon2Memory || p.time < 1 || p.time > maxArgon2Time || threads < 1 || threads > maxArgon2Threads {
		return p, nil, nil, errBadPHC
	}
	p.threads = uint8(threads)
	salt, err1 := phcB64.DecodeString(parts[4])
	key, err2 := phcB64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(salt) > maxArgon2SaltLen || len(key) < 16 || len(key) > maxArgon2KeyLen {
		return p, nil, nil, errBadPHC
	}
	return p, salt, key, nil
}

var errBadScrypt = errors.New("passwordhash: the hash is not a lucia/Better Auth scrypt hash (<hex salt>:<128 hex digits>)")

// parseScrypt reads "<salt>:<key>": the salt's hex string is the salt, as
// lucia and Better Auth use it; the key is 64 bytes in hex.
func parseScrypt(encoded string) (salt, key []byte, err error) {
	s, k, ok := strings.Cut(encoded, ":")
	if !ok || len(s) < minScryptSalt || len(s) > maxScryptSalt || !isHex(s) || len(k) != 2*scryptKeyLen {
		return nil, nil, errBadScrypt
	}
	key, err = hex.DecodeString(k)
	if err != nil {
		return nil, nil, errBadScrypt
	}
	return []byte(s), key, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
