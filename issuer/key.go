// Package issuer holds the gateway's signing keys, mints the short-lived JWTs
// that Convex accepts, and renders the JWKS and OpenID discovery documents
// that Convex fetches to verify them. It has no Caddy dependency.
package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Algorithm is a JWS signature algorithm the issuer can sign with.
type Algorithm string

// The supported algorithms.
const (
	RS256 Algorithm = "RS256"
	EdDSA Algorithm = "EdDSA"
	ES256 Algorithm = "ES256"
)

// DefaultAlgorithm is what keygen makes when no algorithm is asked for: every
// JWT verifier accepts RS256, both of Convex's forms included, so a key made
// for another system or for either form works.
const DefaultAlgorithm = RS256

// DefaultGeneratedAlgorithm is what a gateway generates its own key for when
// no algorithm is configured: Ed25519 signs in tens of microseconds where
// RSA-2048 takes over a millisecond, and Convex's OIDC form accepts it. Its
// static customJwt form does not; ES256 is as fast and fits both.
const DefaultGeneratedAlgorithm = EdDSA

// MinRSABits is the smallest RSA modulus accepted; smaller keys are breakable.
const MinRSABits = 2048

// GeneratedRSABits is the size of RSA keys made by GenerateKey.
const GeneratedRSABits = 2048

// ParseAlgorithm returns the Algorithm named s (case-sensitive, as in the JWS "alg" header).
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(s); a {
	case RS256, EdDSA, ES256:
		return a, nil
	}
	return "", fmt.Errorf("unknown signing algorithm %q: use one of RS256, EdDSA, ES256 (names are case-sensitive)", s)
}

// jwa returns the jwx name of the algorithm.
func (a Algorithm) jwa() jwa.SignatureAlgorithm {
	switch a {
	case EdDSA:
		return jwa.EdDSA()
	case ES256:
		return jwa.ES256()
	default:
		return jwa.RS256()
	}
}

// keyDescription names the kind of key an algorithm needs, for error messages.
func (a Algorithm) keyDescription() string {
	switch a {
	case EdDSA:
		return "an Ed25519 key"
	case ES256:
		return "a P-256 key"
	default:
		return "an RSA key"
	}
}

// Key is a private signing key together with its public JWK, its key ID
// (RFC 7638 thumbprint) and the algorithm it signs with. It is immutable.
type Key struct {
	signer     crypto.Signer
	kid        string
	alg        Algorithm
	publicJSON []byte // the public JWK as published in the JWKS
}

// ID returns the key ID: the RFC 7638 SHA-256 JWK thumbprint, base64url without padding.
func (k *Key) ID() string { return k.kid }

// Algorithm returns the algorithm the key signs with.
func (k *Key) Algorithm() Algorithm { return k.alg }

// PublicJWK returns a fresh copy of the public key as a JWK with kid, alg and
// use ("sig") set. It never holds private members.
func (k *Key) PublicJWK() jwk.Key {
	pub, err := publicJWK(k.signer.Public(), k.kid, k.alg)
	if err != nil {
		// Unreachable: the same conversion succeeded when the key was made.
		return nil
	}
	return pub
}

// MarshalPKCS8PEM encodes the private key as a PKCS#8 "PRIVATE KEY" PEM block,
// the form ParseKey reads back.
func (k *Key) MarshalPKCS8PEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, fmt.Errorf("encode %s private key as PKCS#8: %w", k.alg, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// GenerateKey makes a new key for alg: RSA-2048 for RS256 (also when alg is
// ""), Ed25519 for EdDSA, P-256 for ES256.
func GenerateKey(alg Algorithm) (*Key, error) {
	if alg == "" {
		alg = DefaultAlgorithm
	}
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case RS256:
		signer, err = rsa.GenerateKey(rand.Reader, GeneratedRSABits)
	case EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		_, err = ParseAlgorithm(string(alg))
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return newKey(signer, alg)
}

// ParseKey reads a private key from PEM text (see normalizePEM for the forms
// accepted) and checks that it fits alg. With alg "" the algorithm follows
// from the key: RSA gives RS256, Ed25519 gives EdDSA, P-256 gives ES256.
func ParseKey(pemText []byte, alg Algorithm) (*Key, error) {
	if alg != "" {
		if _, err := ParseAlgorithm(string(alg)); err != nil {
			return nil, err
		}
	}
	signer, err := parsePrivateKeyPEM(pemText)
	if err != nil {
		return nil, err
	}
	keyAlg, err := algorithmFor(signer)
	if err != nil {
		return nil, err
	}
	if alg != "" && alg != keyAlg {
		return nil, fmt.Errorf("algorithm %q does not fit %s: use %s or supply %s",
			alg, keyAlg.keyDescription(), keyAlg, alg.keyDescription())
	}
	return newKey(signer, keyAlg)
}

// algorithmFor returns the one algorithm a private key signs with, or says
// why the key is not usable.
func algorithmFor(signer crypto.Signer) (Algorithm, error) {
	switch key := signer.(type) {
	case *rsa.PrivateKey:
		if bits := key.N.BitLen(); bits < MinRSABits {
			return "", fmt.Errorf("RSA key has %d bits: use a key of at least %d bits", bits, MinRSABits)
		}
		return RS256, nil
	case ed25519.PrivateKey:
		return EdDSA, nil
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC key on curve %s is not supported: use a P-256 key (ES256), an Ed25519 key (EdDSA) or an RSA key (RS256)", key.Curve.Params().Name)
		}
		return ES256, nil
	}
	return "", fmt.Errorf("private key of type %T cannot sign JWTs: use an RSA (RS256), Ed25519 (EdDSA) or P-256 (ES256) key", signer)
}

func newKey(signer crypto.Signer, alg Algorithm) (*Key, error) {
	pub, err := publicJWK(signer.Public(), "", alg)
	if err != nil {
		return nil, err
	}
	kid, err := thumbprintID(pub)
	if err != nil {
		return nil, err
	}
	if err := pub.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, fmt.Errorf("set kid on public JWK: %w", err)
	}
	publicJSON, err := json.Marshal(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public JWK: %w", err)
	}
	return &Key{signer: signer, kid: kid, alg: alg, publicJSON: publicJSON}, nil
}

// publicJWK converts a public key to a JWK with use "sig", alg and (if not
// empty) kid set.
func publicJWK(pub crypto.PublicKey, kid string, alg Algorithm) (jwk.Key, error) {
	key, err := jwk.Import(pub)
	if err != nil {
		return nil, fmt.Errorf("convert %s public key to JWK: %w", alg, err)
	}
	if err := key.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, fmt.Errorf("set use on public JWK: %w", err)
	}
	if err := key.Set(jwk.AlgorithmKey, alg.jwa()); err != nil {
		return nil, fmt.Errorf("set alg on public JWK: %w", err)
	}
	if kid != "" {
		if err := key.Set(jwk.KeyIDKey, kid); err != nil {
			return nil, fmt.Errorf("set kid on public JWK: %w", err)
		}
	}
	return key, nil
}

// thumbprintID is the RFC 7638 JWK thumbprint (SHA-256) in base64url without padding.
func thumbprintID(pub jwk.Key) (string, error) {
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("compute JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
