package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// A realm is one user base: every session, user, account, single-use value
// and rate counter belongs to exactly one. A store serves one realm; records
// carry the realm's tag and a record of another realm, or of none (written
// before realms existed), is not found. Without this, two sites sharing a
// backend would accept each other's cookies.

// MaxRealmBytes bounds a configured realm name.
const MaxRealmBytes = 256

// realmTagLen is the length of a realm tag: base64url of 12 bytes of
// SHA-256, 96 bits, so distinct realms do not collide by chance (realm
// names are configured by operators, not chosen by clients).
const realmTagLen = 16

// errForeignRecord is a record of another realm or of none.
var errForeignRecord = fmt.Errorf("%w: record belongs to another realm", ErrNotFound)

// DefaultRealm is the realm of a site that names none: its issuer and
// application ID, so changing either starts a new user base.
func DefaultRealm(issuer, applicationID string) string {
	// A space cannot occur in an issuer URL, so the split is unambiguous.
	return issuer + " " + applicationID
}

// CheckRealm reports a configured realm name that cannot be used.
func CheckRealm(realm string) error {
	switch {
	case realm == "":
		return errors.New("realm is empty: give a name, or leave realm out for the default (issuer and application_id)")
	case len(realm) > MaxRealmBytes:
		return fmt.Errorf("realm is %d bytes, the limit is %d", len(realm), MaxRealmBytes)
	case strings.IndexFunc(realm, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("realm %q holds a control or non-printable character: use a plain name such as example-users", realm)
	}
	return nil
}

// RealmTag is the short, stable hash of realm that records carry and that
// the default Redis key prefix and cookie name include.
func RealmTag(realm string) string {
	sum := sha256.Sum256([]byte("convex_auth realm\x00" + realm))
	return b64.EncodeToString(sum[:12])
}

// DefaultKeyPrefixFor is the Redis key prefix of realm when none is
// configured: DefaultKeyPrefix and the realm's tag, so that each realm has
// its own keys and revocation channel.
func DefaultKeyPrefixFor(realm string) string {
	return DefaultKeyPrefix + RealmTag(realm) + ":"
}
