package provider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Sign in with Apple's endpoints and issuer.
const (
	AppleIssuer   = "https://appleid.apple.com"
	AppleAuthURL  = "https://appleid.apple.com/auth/authorize"
	AppleTokenURL = "https://appleid.apple.com/auth/token"
	AppleJWKSURL  = "https://appleid.apple.com/auth/keys"
	// AppleRelayDomain is the domain of Hide My Email addresses.
	AppleRelayDomain = "privaterelay.appleid.com"
	// appleSecretTTL is the life of each client secret: one exchange.
	appleSecretTTL = 5 * time.Minute
)

// AppleConfig configures Sign in with Apple on the web (provider apple).
// The client ID is the Services ID; there is no client secret to
// configure: the gateway signs one (ES256) for each code exchange with
// the key Apple issued.
type AppleConfig struct {
	Common
	// TeamID is the 10-character Team ID of the Apple developer account.
	// Required; no default.
	TeamID string `json:"team_id,omitempty"`
	// KeyID is the 10-character ID of the Sign in with Apple private key
	// (the XXXXXXXXXX of AuthKey_XXXXXXXXXX.p8). Required; no default.
	KeyID string `json:"key_id,omitempty"`
	// PrivateKey is the .p8 file's PEM text (with literal \n escapes
	// accepted), e.g. {env.APPLE_PRIVATE_KEY}. This or PrivateKeyFile is
	// required.
	PrivateKey string `json:"private_key,omitempty"`
	// PrivateKeyFile is the path of the .p8 file. This or PrivateKey is
	// required.
	PrivateKeyFile string `json:"private_key_file,omitempty"`
	// JWKSURL overrides where Apple's ID-token keys are read. Default:
	// https://appleid.apple.com/auth/keys.
	JWKSURL string `json:"jwks_url,omitempty"`
}

// Validate checks the configuration without building anything; the key
// is read when the provider is built.
func (c AppleConfig) Validate() error {
	if c.ClientSecret != "" {
		return errors.New("client_secret is not set for apple: the gateway signs one from team_id, key_id and private_key_file (or private_key)")
	}
	if c.TeamID == "" || c.KeyID == "" {
		return errors.New("apple needs team_id and key_id (and private_key_file or private_key): see docs/providers.md#apple")
	}
	if (c.PrivateKey == "") == (c.PrivateKeyFile == "") {
		return errors.New("apple needs one of private_key_file (the .p8 file) and private_key (its text)")
	}
	return c.validateSecretless(KindApple, false, [2]string{"jwks_url", c.JWKSURL})
}

// NewApple is Sign in with Apple: the answer comes back as a form POST,
// the client secret is a JWT signed per exchange, the name arrives only
// at the first sign-in (the user form field), and email_verified may be
// a string.
func NewApple(c AppleConfig) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindApple), err)
	}
	key, err := c.signingKey()
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindApple), err)
	}
	c.fill(KindApple, "Apple")
	oc := OIDCConfig{Common: c.Common, Issuer: AppleIssuer, JWKSURL: c.JWKSURL}
	if oc.AuthURL == "" {
		oc.AuthURL = AppleAuthURL
	}
	if oc.TokenURL == "" {
		oc.TokenURL = AppleTokenURL
	}
	if oc.JWKSURL == "" {
		oc.JWKSURL = AppleJWKSURL
	}
	secret := appleSecret{teamID: c.TeamID, keyID: c.KeyID, clientID: c.ClientID, key: key, now: time.Now}
	return newOIDC(oc, KindApple, oidcQuirks{
		// Apple's scopes: no openid; name and email make it answer by
		// form POST only.
		scopes:       []string{"name", "email"},
		formPost:     true,
		clientSecret: secret.sign,
		identity:     appleIdentity,
	}), nil
}

// signingKey reads the .p8 key: a PKCS#8 P-256 key.
func (c AppleConfig) signingKey() (*ecdsa.PrivateKey, error) {
	text := c.PrivateKey
	if c.PrivateKeyFile != "" {
		b, err := os.ReadFile(c.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("private_key_file: %w", err)
		}
		text = string(b)
	}
	text = strings.ReplaceAll(text, `\n`, "\n")
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("the private key is not PEM: use the .p8 file Apple issued")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the private key is not a PKCS#8 key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the private key is not a P-256 key: use the Sign in with Apple key (.p8)")
	}
	return ec, nil
}

// appleSecret signs Apple's client secrets.
type appleSecret struct {
	teamID, keyID, clientID string
	key                     *ecdsa.PrivateKey
	now                     func() time.Time
}

// sign makes one client secret: an ES256 JWT from the team (iss) for the
// Services ID (sub) to Apple (aud), living a few minutes.
func (a appleSecret) sign() (string, error) {
	now := a.now()
	payload, err := json.Marshal(map[string]any{
		"iss": a.teamID, "sub": a.clientID, "aud": AppleIssuer,
		"iat": now.Unix(), "exp": now.Add(appleSecretTTL).Unix(),
	})
	if err != nil {
		return "", err
	}
	hdrs := jws.NewHeaders()
	if err := hdrs.Set(jws.KeyIDKey, a.keyID); err != nil {
		return "", err
	}
	signed, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), a.key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		return "", err
	}
	return string(signed), nil
}

// appleUser is the user form field of Apple's first answer to an app:
// the name the user chose to share. It is not signed, so only the name is
// taken from it; the email comes from the ID token.
type appleUser struct {
	Name struct {
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
	} `json:"name"`
}

// appleIdentity reads the ID token, and the name from the user field
// when Apple sent one. A private-relay address (Hide My Email) is a
// verified address like any other: unique to the app's team, so it only
// ever matches a user who signed in with it before.
func appleIdentity(claims map[string]any, cb Callback) (Identity, error) {
	id := Identity{Subject: str(claims[claimSub]), Email: str(claims[claimEmail]), EmailVerified: isTrue(claims[claimEmailVerified])}
	if raw := cb.Params.Get("user"); raw != "" {
		var u appleUser
		if json.Unmarshal([]byte(raw), &u) == nil {
			id.Name = strings.TrimSpace(strings.TrimSpace(u.Name.FirstName) + " " + strings.TrimSpace(u.Name.LastName))
		}
	}
	return id, nil
}
