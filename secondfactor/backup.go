package secondfactor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Backup codes: BackupCodeCount single-use codes of 12 characters from a
// 32-letter alphabet (60 bits each), shown once as xxxx-xxxx-xxxx and
// stored as a hash bound to the user, so a copy of the store signs nobody
// in and a hash of one user's code is worth nothing for another's.
const (
	BackupCodeCount  = 10
	backupCodeLength = 12
	// backupAlphabet is Crockford's base32: no i, l, o or u to misread.
	backupAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	backupPurpose  = "convex_auth backup code v1"
)

// NewBackupCodes makes BackupCodeCount codes for userID, and their hashes
// for the store.
func NewBackupCodes(userID string) (codes, hashes []string) {
	for range BackupCodeCount {
		var raw [backupCodeLength]byte
		_, _ = rand.Read(raw[:]) // never fails on supported platforms
		var c strings.Builder
		for i, b := range raw {
			if i > 0 && i%4 == 0 {
				c.WriteByte('-')
			}
			c.WriteByte(backupAlphabet[b&31])
		}
		code := c.String()
		h, _ := HashBackupCode(userID, code)
		codes, hashes = append(codes, code), append(hashes, h)
	}
	return codes, hashes
}

// HashBackupCode is the stored form of a code typed for userID, and false
// when what was typed cannot be a backup code. Typing is forgiven: any
// letter case, spaces and dashes anywhere, and i, l (one) and o (zero).
func HashBackupCode(userID, typed string) (string, bool) {
	code := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t':
			return -1
		case 'i', 'I', 'l', 'L':
			return '1'
		case 'o', 'O':
			return '0'
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, typed)
	if len(code) != backupCodeLength || strings.Trim(code, backupAlphabet) != "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(backupPurpose + "\x00" + userID + "\x00" + code))
	return base64.RawURLEncoding.EncodeToString(sum[:]), true
}

// LooksLikeBackupCode tells a backup code from a TOTP code in one field.
func LooksLikeBackupCode(typed string) bool {
	return len(NormalizeCode(typed)) > Digits
}
