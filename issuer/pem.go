package issuer

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
)

// pemBlockPattern finds armored blocks whatever separates their lines:
// newlines, the literal "\n" escapes of a one-line environment variable, or
// the spaces Convex Auth's key script puts in JWT_PRIVATE_KEY.
var pemBlockPattern = regexp.MustCompile(`(?s)-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----`)

// normalizePEM undoes what happens to a PEM on its way through an environment
// variable or a .env file: surrounding whitespace and quotes, and newlines
// written as the two characters `\n` (as the Convex Auth.js guide's
// generateKeys.mjs prints CONVEX_AUTH_PRIVATE_KEY).
func normalizePEM(text []byte) string {
	s := strings.TrimSpace(string(text))
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	s = strings.ReplaceAll(s, `\r`, "")
	s = strings.ReplaceAll(s, `\n`, "\n")
	return s
}

// parsePrivateKeyPEM returns the first private key in the PEM text. It reads
// PKCS#8 "PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY" and SEC1 "EC PRIVATE KEY"
// blocks and skips the "EC PARAMETERS" block that `openssl ecparam -genkey`
// writes first.
func parsePrivateKeyPEM(text []byte) (crypto.Signer, error) {
	s := normalizePEM(text)
	matches := pemBlockPattern.FindAllStringSubmatch(s, -1)
	if len(matches) == 0 {
		return nil, fmt.Errorf("no PEM block found: expected a PKCS#8 private key starting with -----BEGIN PRIVATE KEY-----")
	}
	for _, m := range matches {
		blockType, body, endType := m[1], m[2], m[3]
		if blockType != endType {
			return nil, fmt.Errorf("PEM block begins as %q but ends as %q: the key text is damaged", blockType, endType)
		}
		if blockType == "EC PARAMETERS" {
			continue
		}
		if strings.Contains(body, ":") {
			// RFC 1421 headers such as "Proc-Type: 4,ENCRYPTED".
			return nil, fmt.Errorf("PEM block %q has headers (an encrypted legacy key?): supply an unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt)", blockType)
		}
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
		if err != nil {
			return nil, fmt.Errorf("PEM block %q is not valid base64: the key text is damaged", blockType)
		}
		return parsePrivateKeyDER(blockType, der)
	}
	return nil, fmt.Errorf("PEM text holds no private key block: expected -----BEGIN PRIVATE KEY-----")
}

func parsePrivateKeyDER(blockType string, der []byte) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch blockType {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("encrypted PKCS#8 keys are not supported: decrypt it first (openssl pkcs8 -in encrypted.pem -out key.pem)")
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return nil, fmt.Errorf("found a %q PEM block but signing needs the private key: supply the -----BEGIN PRIVATE KEY----- block", blockType)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q: supply a PKCS#8 -----BEGIN PRIVATE KEY----- block", blockType)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %q PEM block: %w", blockType, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign JWTs: use an RSA (RS256), Ed25519 (EdDSA) or P-256 (ES256) key", key)
	}
	return signer, nil
}
