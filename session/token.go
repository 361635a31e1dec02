package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// A cookie token is "<usertag>.<secret>":
//
//   - usertag: base64url of the first 8 bytes of SHA-256(user ID). It puts all
//     of a user's keys in one Redis Cluster hash slot without revealing the
//     user ID.
//   - secret: 32 bytes from crypto/rand, base64url (256 bits).
//
// The session ID is base64url of the first 16 bytes of SHA-256(token). Stores
// key sessions by it, so they never hold the token, and the ID (public: it is
// the JWT's sid) cannot be turned back into a token.
const (
	userTagBytes   = 8
	secretBytes    = 32
	sessionIDBytes = 16

	userTagLen   = 11 // base64url length of userTagBytes
	secretLen    = 43 // base64url length of secretBytes
	sessionIDLen = 22 // base64url length of sessionIDBytes

	// TokenLength is the length of every token this package issues.
	TokenLength = userTagLen + 1 + secretLen
)

var b64 = base64.RawURLEncoding.Strict()

// parsedToken is a syntactically valid token and what derives from it.
type parsedToken struct {
	userTag   string
	sessionID string
}

// newToken makes a random token for userID.
func newToken(userID string) (token string, p parsedToken, err error) {
	var secret [secretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", parsedToken{}, fmt.Errorf("%w: reading random bytes: %w", ErrUnavailable, err)
	}
	tag := userTag(userID)
	token = tag + "." + b64.EncodeToString(secret[:])
	return token, parsedToken{userTag: tag, sessionID: sessionIDOf(token)}, nil
}

// parseToken checks a cookie value's shape before any store call.
func parseToken(token string) (parsedToken, error) {
	if len(token) != TokenLength || token[userTagLen] != '.' {
		return parsedToken{}, ErrMalformedToken
	}
	tag, secret := token[:userTagLen], token[userTagLen+1:]
	if !validB64(tag, userTagBytes) || !validB64(secret, secretBytes) {
		return parsedToken{}, ErrMalformedToken
	}
	return parsedToken{userTag: tag, sessionID: sessionIDOf(token)}, nil
}

// ValidTokenFormat reports whether token has the shape of an issued token.
// It does not say whether the session exists.
func ValidTokenFormat(token string) bool {
	_, err := parseToken(token)
	return err == nil
}

// validSessionID reports whether id has the shape of a session ID.
func validSessionID(id string) bool {
	return len(id) == sessionIDLen && validB64(id, sessionIDBytes)
}

// validB64 reports whether s is canonical unpadded base64url of n bytes.
func validB64(s string, n int) bool {
	var buf [secretBytes]byte
	if n > len(buf) || b64.EncodedLen(n) != len(s) {
		return false
	}
	got, err := b64.Decode(buf[:], []byte(s))
	return err == nil && got == n
}

func userTag(userID string) string {
	sum := sha256.Sum256([]byte(userID))
	return b64.EncodeToString(sum[:userTagBytes])
}

func sessionIDOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:sessionIDBytes])
}
