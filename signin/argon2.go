package signin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of new password hashes.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultArgon2Params follow OWASP's argon2id minimum: 19 MiB, 2 passes,
// 1 lane.
var DefaultArgon2Params = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read from a stored hash, so a corrupt or hostile
// record cannot make a verification take gigabytes or minutes.
const (
	maxArgon2Memory  = 1 << 20 // 1 GiB
	maxArgon2Time    = 16
	maxArgon2Threads = 16
	maxArgon2KeyLen  = 64
	maxArgon2SaltLen = 64
)

var errBadHash = errors.New("the stored password hash is not a PHC argon2id string")

var phcB64 = base64.RawStdEncoding

// HashPassword returns the PHC string of password:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>.
func HashPassword(password string, p Argon2Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, phcB64.EncodeToString(salt), phcB64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC string, comparing
// in constant time.
func VerifyPassword(password, encoded string) (bool, error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parsePHC(encoded string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errBadHash
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || n != 3 {
		return p, nil, nil, errBadHash
	}
	if p.Memory < 8 || p.Memory > maxArgon2Memory || p.Time < 1 || p.Time > maxArgon2Time || threads < 1 || threads > maxArgon2Threads {
		return p, nil, nil, errBadHash
	}
	p.Threads = uint8(threads)
	salt, err1 := phcB64.DecodeString(parts[4])
	key, err2 := phcB64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(salt) > maxArgon2SaltLen || len(key) < 16 || len(key) > maxArgon2KeyLen {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
