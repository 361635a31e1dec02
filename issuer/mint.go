package issuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/lestrrat-go/dsig"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Claims are the facts about a signed-in user that go into a token.
// Empty profile fields are left out of the token.
type Claims struct {
	UserID    string // required
	SessionID string // required with SubjectUserSession
	Email     string
	// EmailVerified is published as "email_verified" whenever Email is set.
	EmailVerified bool
	Name          string
	Picture       string
	// AuthTime is when the user last authenticated in the session
	// (auth_time, whole seconds); zero leaves the claim out.
	AuthTime time.Time
	// AMR are the RFC 8176 authentication method references (amr); empty
	// leaves the claim out.
	AMR []string
}

// tokenClaims is the JWT payload. aud is one string, not an array: Convex
// rejects tokens with audiences it does not know.
type tokenClaims struct {
	Issuer        string   `json:"iss"`
	Subject       string   `json:"sub"`
	Audience      string   `json:"aud"`
	SessionID     string   `json:"sid,omitempty"`
	IssuedAt      int64    `json:"iat"`
	ExpiresAt     int64    `json:"exp"`
	Email         string   `json:"email,omitempty"`
	EmailVerified *bool    `json:"email_verified,omitempty"`
	Name          string   `json:"name,omitempty"`
	Picture       string   `json:"picture,omitempty"`
	AuthTime      int64    `json:"auth_time,omitempty"`
	AMR           []string `json:"amr,omitempty"`
}

// Shared targets for tokenClaims.EmailVerified, so Mint does not allocate a bool.
var (
	emailVerifiedTrue  = true
	emailVerifiedFalse = false
)

// signingKey is a Key made ready for the hot path: its signature function
// and the encoded protected header, built once.
type signingKey struct {
	key       *Key
	sign      func(input []byte) ([]byte, error) // the JWS signature of a signing input
	headerB64 string                             // base64url of {"alg":…,"kid":…,"typ":"JWT"}
	sigB64Len int
}

// signatureFunc returns the JWS signature function of k. It calls jwx's
// signing engine (lestrrat-go/dsig) with the key's concrete type: the
// generic jws.SignerFor(alg).Sign looks the algorithm up in two locked
// registries and re-derives the public key on every call (three more
// allocations per EdDSA token).
func signatureFunc(k *Key) (func([]byte) ([]byte, error), error) {
	switch key := k.signer.(type) {
	case *rsa.PrivateKey:
		if k.alg == RS256 {
			return func(in []byte) ([]byte, error) { return dsig.SignRSA(key, in, crypto.SHA256, false, nil) }, nil
		}
	case ed25519.PrivateKey:
		if k.alg == EdDSA {
			return func(in []byte) ([]byte, error) { return dsig.SignEdDSA(key, in) }, nil
		}
	case *ecdsa.PrivateKey:
		if k.alg == ES256 {
			// r||s, each padded to 32 bytes, as RFC 7518 3.4 asks.
			return func(in []byte) ([]byte, error) { return dsig.SignECDSA(key, in, crypto.SHA256, nil) }, nil
		}
	}
	return nil, fmt.Errorf("a %T cannot sign %s", k.signer, k.alg)
}

func newSigningKey(k *Key) (*signingKey, error) {
	sign, err := signatureFunc(k)
	if err != nil {
		return nil, err
	}
	hdrs := jws.NewHeaders()
	for name, value := range map[string]any{
		jws.AlgorithmKey: k.alg.jwa(),
		jws.KeyIDKey:     k.kid,
		jws.TypeKey:      "JWT",
	} {
		if err := hdrs.Set(name, value); err != nil {
			return nil, fmt.Errorf("set %q in JWS header: %w", name, err)
		}
	}
	header, err := json.Marshal(hdrs)
	if err != nil {
		return nil, fmt.Errorf("encode JWS header: %w", err)
	}
	sigLen := 64 // Ed25519, and ES256's fixed-size r||s
	if pub, ok := k.signer.Public().(*rsa.PublicKey); ok {
		sigLen = pub.Size()
	}
	return &signingKey{
		key:       k,
		sign:      sign,
		headerB64: base64.RawURLEncoding.EncodeToString(header),
		sigB64Len: base64.RawURLEncoding.EncodedLen(sigLen),
	}, nil
}

// Mint signs a token for c with the current signing key. It returns the
// compact JWS and its iat and exp (whole seconds).
func (i *Issuer) Mint(c Claims) (token string, issuedAt, expiresAt time.Time, err error) {
	if c.UserID == "" {
		return "", time.Time{}, time.Time{}, errors.New("cannot mint a token without a user ID")
	}
	subject := c.UserID
	if i.cfg.Subject == SubjectUserSession {
		if c.SessionID == "" {
			return "", time.Time{}, time.Time{}, errors.New("cannot mint a token without a session ID: the subject format is user_session")
		}
		if strings.Contains(c.UserID, SubjectSeparator) {
			return "", time.Time{}, time.Time{}, fmt.Errorf("user ID contains %q, which separates user and session in the subject: use user IDs without it or the subject format %q", SubjectSeparator, SubjectUser)
		}
		subject = c.UserID + SubjectSeparator + c.SessionID
	}

	iat := i.cfg.Now().Unix()
	exp := iat + int64(i.cfg.TokenTTL/time.Second)
	pe := payloadEncoders.Get().(*payloadEncoder)
	defer pe.release()
	pe.claims = tokenClaims{
		Issuer:    i.cfg.Issuer,
		Subject:   subject,
		Audience:  i.cfg.Audience,
		SessionID: c.SessionID,
		IssuedAt:  iat,
		ExpiresAt: exp,
		Email:     c.Email,
		Name:      c.Name,
		Picture:   c.Picture,
		AMR:       c.AMR,
	}
	if !c.AuthTime.IsZero() {
		pe.claims.AuthTime = c.AuthTime.Unix()
	}
	if c.Email != "" {
		pe.claims.EmailVerified = &emailVerifiedFalse
		if c.EmailVerified {
			pe.claims.EmailVerified = &emailVerifiedTrue
		}
	}
	pe.buf.Reset()
	if err := pe.enc.Encode(&pe.claims); err != nil {
		return "", time.Time{}, time.Time{}, fmt.Errorf("encode token claims: %w", err)
	}
	payload := bytes.TrimSuffix(pe.buf.Bytes(), []byte("\n")) // Encode ends with a newline

	sk := i.keys.Load().signing
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(sk.headerB64)+1+enc.EncodedLen(len(payload))+1+sk.sigB64Len)
	buf = append(buf, sk.headerB64...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := sk.sign(buf)
	if err != nil {
		return "", time.Time{}, time.Time{}, fmt.Errorf("sign token with %s key %s: %w", sk.key.alg, sk.key.kid, err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	// buf is not touched again, so the token can share its bytes.
	return unsafe.String(unsafe.SliceData(buf), len(buf)), time.Unix(iat, 0), time.Unix(exp, 0), nil
}

// payloadEncoder is Mint's scratch space for the claims' JSON, reused so
// that a mint allocates little more than its token (fewer allocations, less
// GC work on the miss path).
type payloadEncoder struct {
	claims tokenClaims
	buf    bytes.Buffer
	enc    *json.Encoder // writes to buf, escaping as json.Marshal does
}

// maxPooledPayload: a buffer grown past this (a huge claim) is not kept.
const maxPooledPayload = 16 << 10

// release returns pe to the pool without the user's claims.
func (pe *payloadEncoder) release() {
	pe.claims = tokenClaims{}
	if pe.buf.Cap() <= maxPooledPayload {
		payloadEncoders.Put(pe)
	}
}

var payloadEncoders = sync.Pool{New: func() any {
	pe := &payloadEncoder{}
	pe.enc = json.NewEncoder(&pe.buf)
	return pe
}}
