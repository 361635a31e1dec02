package issuer

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and limits of Config.
const (
	// DefaultAudience is the "aud" claim, Convex's conventional applicationID.
	DefaultAudience = "convex"
	// DefaultTokenTTL is how long a minted token is valid.
	DefaultTokenTTL = 5 * time.Minute
	// MinTokenTTL is the shortest token lifetime accepted: Convex's browser
	// client fetches a new token 10 s before the current one expires, so a
	// shorter lifetime means near-constant refreshing.
	MinTokenTTL = 30 * time.Second
)

// Paths of the two documents, relative to the issuer URL's path.
const (
	DiscoveryPathSuffix = "/.well-known/openid-configuration"
	JWKSPathSuffix      = "/.well-known/jwks.json"
)

// SubjectFormat selects what the "sub" claim holds.
type SubjectFormat string

const (
	// SubjectUser puts the user ID in "sub".
	SubjectUser SubjectFormat = "user"
	// SubjectUserSession puts "userId;sessionId" in "sub".
	SubjectUserSession SubjectFormat = "user_session"
)

// SubjectSeparator joins user and session ID under SubjectUserSession.
const SubjectSeparator = ";"

// Config configures an Issuer.
type Config struct {
	// Issuer is the "iss" claim and the discovery document's "issuer",
	// used byte for byte: Convex compares them with its configured domain.
	// Required; an absolute http(s) URL with a host, without query or fragment.
	Issuer string
	// Audience is the "aud" claim (Convex's applicationID). Default DefaultAudience.
	Audience string
	// TokenTTL is the lifetime of a minted token, in whole seconds.
	// Default DefaultTokenTTL; at least MinTokenTTL.
	TokenTTL time.Duration
	// Subject is the format of the "sub" claim. Default SubjectUser.
	Subject SubjectFormat
	// Now returns the current time. Default time.Now; tests inject a clock.
	Now func() time.Time
	// ProfileClaims are the profile claims tokens carry, of
	// ProfileClaimNames, or NoProfileClaims alone. Default: all of them.
	ProfileClaims []string
}

// Issuer mints tokens with its signing key and serves the documents that let
// Convex verify them. It is safe for concurrent use; rotation does not block Mint.
type Issuer struct {
	cfg           Config
	discoveryPath string
	jwksPath      string
	jwksURI       string

	profile profileSet // Config.ProfileClaims

	mu   sync.Mutex             // serialises changes to keys
	keys atomic.Pointer[keySet] // immutable snapshot read by Mint and the documents
}

// New checks cfg, applies its defaults and returns an Issuer that signs with signing.
func New(cfg Config, signing *Key) (*Issuer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if signing == nil {
		return nil, errors.New("no signing key given: load one with ParseKey or LoadOrCreateKeyring")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %q is not a valid URL: %w", cfg.Issuer, err)
	}
	profile, err := ParseProfileClaims(cfg.ProfileClaims)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(u.Path, "/")
	i := &Issuer{
		profile:       profile,
		cfg:           cfg,
		discoveryPath: base + DiscoveryPathSuffix,
		jwksPath:      base + JWKSPathSuffix,
		jwksURI:       strings.TrimRight(cfg.Issuer, "/") + JWKSPathSuffix,
	}
	sk, err := newSigningKey(signing)
	if err != nil {
		return nil, err
	}
	i.keys.Store(i.buildKeySet(sk, nil, nil, cfg.Now()))
	return i, nil
}

func (c Config) withDefaults() (Config, error) {
	if err := validateIssuerURL(c.Issuer); err != nil {
		return c, err
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if strings.TrimSpace(c.Audience) != c.Audience {
		return c, fmt.Errorf("audience %q has leading or trailing whitespace: Convex compares it byte for byte with applicationID", c.Audience)
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	c.TokenTTL = c.TokenTTL.Truncate(time.Second) // JWT times are whole seconds
	if c.TokenTTL < MinTokenTTL {
		return c, fmt.Errorf("token TTL %s is below the minimum of %s: Convex's browser client refreshes a token 10s before it expires, so shorter tokens would be refreshed almost constantly", c.TokenTTL, MinTokenTTL)
	}
	switch c.Subject {
	case "":
		c.Subject = SubjectUser
	case SubjectUser, SubjectUserSession:
	default:
		return c, fmt.Errorf("subject format %q is unknown: use %q or %q", c.Subject, SubjectUser, SubjectUserSession)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// validateIssuerURL accepts an absolute http(s) URL with a host and without
// query, fragment or user info, so that "<issuer>/.well-known/..." is a URL.
func validateIssuerURL(s string) error {
	if s == "" {
		return errors.New("issuer is required: set it to the gateway's public URL, e.g. https://app.example.com")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("issuer %q contains whitespace or control characters", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("issuer %q is not a valid URL: %w", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("issuer %q must be an absolute http or https URL, e.g. https://app.example.com", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("issuer %q has no host: use e.g. https://app.example.com", s)
	case u.User != nil:
		return fmt.Errorf("issuer %q must not contain user info", s)
	case strings.ContainsAny(s, "?#"):
		return fmt.Errorf("issuer %q must not have a query or fragment: Convex appends /.well-known/openid-configuration to it", s)
	}
	return nil
}

// Config returns the configuration with defaults applied.
func (i *Issuer) Config() Config { return i.cfg }

// DiscoveryPath is the request path of the discovery document: the issuer
// URL's path without trailing slash, plus /.well-known/openid-configuration.
func (i *Issuer) DiscoveryPath() string { return i.discoveryPath }

// JWKSPath is the request path of the JWKS: the issuer URL's path without
// trailing slash, plus /.well-known/jwks.json.
func (i *Issuer) JWKSPath() string { return i.jwksPath }
