// Package session keeps signed-in sessions behind opaque cookie tokens, in
// Redis (standalone, Sentinel or Cluster) or, for development, in process.
//
// A store never holds a cookie token: it keys sessions by a hash of it, so a
// copy of the store's data signs nobody in. Expiry (absolute and idle) is
// enforced on every lookup, whatever the backend still holds.
package session

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrNotFound means there is no usable session for the token or ID: unknown,
// expired, idle-expired, revoked or malformed are all the same to callers.
var ErrNotFound = errors.New("session: not found")

// ErrMalformedToken is returned for a token that cannot have been issued by
// this package; it wraps ErrNotFound and costs no store round trip.
var ErrMalformedToken = fmt.Errorf("%w: malformed token", ErrNotFound)

// ErrUnavailable wraps every failure to reach or use the backend. Callers
// answer 503 on protected paths.
var ErrUnavailable = errors.New("session: store unavailable")

// ErrInvalidSession wraps a rejected Create input (missing user ID, a field
// over its size limit).
var ErrInvalidSession = errors.New("session: invalid session")

// IsUnavailable reports whether err means the store could not be reached or
// failed, as opposed to a session that does not exist.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable)
}

// Size limits for stored fields; they keep one session's footprint bounded
// whatever an identity provider sends.
const (
	MaxUserIDBytes   = 256
	MaxProviderBytes = 64
	MaxEmailBytes    = 320
	MaxNameBytes     = 512
	MaxPictureBytes  = 2048
	// MaxUserAgentBytes caps the stored User-Agent; a longer one is cut on
	// a UTF-8 boundary rather than refused (browsers send what they send).
	MaxUserAgentBytes = 256
)

// Profile holds the claims copied into minted JWTs.
type Profile struct {
	Email         string
	EmailVerified bool
	Name          string
	Picture       string
}

// Session is one signed-in browser.
type Session struct {
	// ID is the public session ID (the JWT's sid). It is derived one-way from
	// the cookie token and cannot be turned back into it.
	ID         string
	UserID     string
	Provider   string
	CreatedAt  time.Time
	ExpiresAt  time.Time // absolute expiry
	LastUsedAt time.Time // written at most once per Options.TouchInterval
	Profile    Profile
	// UserAgent is the browser's User-Agent at sign-in, capped by
	// CapUserAgent; empty for sessions created before it was recorded.
	UserAgent string
	// AuthTime is when the browser last signed in or re-authenticated in
	// this session (the JWT's auth_time): its creation, until
	// Store.Reauthenticate moves it. Whatever must be recent (changing how
	// one signs in, deleting the account, step-up) is measured from it.
	AuthTime time.Time
	// AMR are the RFC 8176 method references of that authentication (the
	// JWT's amr) when the caller named them (NewSession.AMR,
	// Reauthenticate); empty means the sign-in method's own, which the
	// caller derives from Provider.
	AMR []string
}

// Recent reports whether the session's last sign-in or re-authentication
// is less than window old at now.
func (s *Session) Recent(now time.Time, window time.Duration) bool {
	return now.Sub(s.AuthTime) < window
}

// EndsAt is when the session ends if it is not used again: the earlier of
// its absolute expiry and its idle expiry.
func (s *Session) EndsAt(idleTTL time.Duration) time.Time {
	if idle := s.LastUsedAt.Add(idleTTL); idle.Before(s.ExpiresAt) {
		return idle
	}
	return s.ExpiresAt
}

// clone returns a copy the caller may modify.
func (s *Session) clone() *Session {
	c := *s
	c.AMR = slices.Clone(s.AMR)
	return &c
}

// NewSession is the input to Store.Create.
type NewSession struct {
	UserID   string
	Provider string
	Profile  Profile
	// UserAgent is stored through CapUserAgent.
	UserAgent string
	// AMR, if set, are the RFC 8176 methods of the sign-in (at most
	// MaxAMRValues, each a short lower-case token); empty: the sign-in
	// method's own, derived from Provider by whoever reads the session.
	AMR []string
	// MaxTTL, when positive and shorter than the store's SessionTTL, is
	// the session's absolute lifetime instead (a session an admission rule
	// admitted, which must be checked again sooner).
	MaxTTL time.Duration
}

// expiresAt is the absolute expiry of a session created at now by a store
// whose lifetime is ttl.
func (n NewSession) expiresAt(now time.Time, ttl time.Duration) time.Time {
	if n.MaxTTL > 0 && n.MaxTTL < ttl {
		ttl = n.MaxTTL
	}
	return now.Add(ttl).Truncate(time.Millisecond)
}

// CapUserAgent makes a User-Agent fit for storing and showing: valid UTF-8,
// no control characters, at most MaxUserAgentBytes, cut on a character
// boundary.
func CapUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "")
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, ua)
	ua = strings.TrimSpace(ua)
	if len(ua) <= MaxUserAgentBytes {
		return ua
	}
	cut := MaxUserAgentBytes
	for cut > 0 && !utf8.RuneStart(ua[cut]) {
		cut--
	}
	return ua[:cut]
}

func (n NewSession) validate() error {
	if n.UserID == "" {
		return fmt.Errorf("%w: user ID is empty", ErrInvalidSession)
	}
	limits := []struct {
		field string
		value string
		max   int
	}{
		{"user ID", n.UserID, MaxUserIDBytes},
		{"provider", n.Provider, MaxProviderBytes},
		{"email", n.Profile.Email, MaxEmailBytes},
		{"name", n.Profile.Name, MaxNameBytes},
		{"picture", n.Profile.Picture, MaxPictureBytes},
	}
	for _, l := range limits {
		if len(l.value) > l.max {
			return fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrInvalidSession, l.field, len(l.value), l.max)
		}
	}
	return ValidateAMR(n.AMR)
}

// Limits of Session.AMR.
const (
	MaxAMRValues = 8
	maxAMRBytes  = 32
)

// ValidateAMR accepts up to MaxAMRValues method references, each 1 to 32
// characters of a-z, 0-9, - and _ (RFC 8176's values are such). Callers
// check amr a provider reported with it before a session records it.
func ValidateAMR(amr []string) error {
	if len(amr) > MaxAMRValues {
		return fmt.Errorf("%w: %d authentication methods, the limit is %d", ErrInvalidSession, len(amr), MaxAMRValues)
	}
	for _, v := range amr {
		if v == "" || len(v) > maxAMRBytes || strings.IndexFunc(v, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) >= 0 {
			return fmt.Errorf("%w: authentication method %q must be 1 to %d characters of a-z, 0-9, - and _", ErrInvalidSession, v, maxAMRBytes)
		}
	}
	return nil
}

// expired reports whether s is past its absolute or idle expiry at now.
func (s *Session) expired(now time.Time, idleTTL time.Duration) bool {
	return !now.Before(s.EndsAt(idleTTL))
}
