// Package secondfactor owns the second factors that are not passkeys: TOTP
// authenticator apps (RFC 6238: the secret, its otpauth:// URI and QR
// code, the code check with its skew and replay rule) and single-use
// backup codes, and the key that seals TOTP secrets at rest. It keeps no
// state: the store (session.SecondFactors) keeps the sealed secret, the
// last accepted step and the codes' hashes. No Caddy import.
package secondfactor

import (
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters every authenticator app supports: 6 digits, 30 s
// steps, HMAC-SHA1, a 160-bit secret (RFC 4226's recommended length).
const (
	Digits     = 6
	Period     = 30 * time.Second
	secretSize = 20
	// Skew is how many steps before and after the current one a code may
	// be from: a phone's clock a little off still works.
	Skew = 1
	// MaxCodeAttempts wrong codes end a challenge.
	MaxCodeAttempts = 5
)

// Enrolment is a new TOTP secret, not yet confirmed.
type Enrolment struct {
	// Secret is the shared secret in base32 without padding: what an app
	// takes when typed in.
	Secret string
	// URI is the otpauth:// URI the QR code holds.
	URI string
}

// NewEnrolment makes a new random secret for the account (the user's
// email or name) at issuer (the site's name), as authenticator apps
// label it.
func NewEnrolment(issuer, account string) (Enrolment, error) {
	return enrolment(issuer, account, "")
}

// EnrolmentFor rebuilds the enrolment of secret (its URI), as the page
// that confirms it shows it again: the same URI NewEnrolment made.
func EnrolmentFor(issuer, account, secret string) Enrolment {
	e, err := enrolment(issuer, account, secret)
	if err != nil {
		return Enrolment{Secret: secret}
	}
	return e
}

// enrolment is NewEnrolment's, with secret (base32) given, or random
// when it is "".
func enrolment(issuer, account, secret string) (Enrolment, error) {
	if account == "" {
		account = issuer
	}
	opts := totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: uint(Period / time.Second),
		SecretSize: secretSize, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	}
	if secret != "" {
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
		if err != nil {
			return Enrolment{}, fmt.Errorf("secondfactor: the secret is not base32: %w", err)
		}
		opts.Secret = raw
	}
	k, err := totp.Generate(opts)
	if err != nil {
		return Enrolment{}, fmt.Errorf("secondfactor: making a TOTP secret: %w", err)
	}
	return Enrolment{Secret: k.Secret(), URI: k.URL()}, nil
}

// ValidSecret reports whether secret is a secret NewEnrolment could have
// made: base32 of the right length.
func ValidSecret(secret string) bool {
	if len(secret) != 32 {
		return false
	}
	_, err := hotp.GenerateCodeCustom(secret, 0, hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	return err == nil
}

// Step is the RFC 6238 time step of t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// ErrCode means a code is not right (wrong, malformed, or of a step
// outside the skew).
var ErrCode = errors.New("secondfactor: the code is not right")

// ErrReplayed means a code is right but its step, or a later one, was
// accepted before (RFC 6238 §5.2): the same code twice, or an older one.
var ErrReplayed = errors.New("secondfactor: the code was used already")

// CheckCode checks a code typed for secret at now, with Skew steps either
// way, and returns the step it belongs to. lastStep is the last step the
// user had accepted: a code of that step or an earlier one is
// ErrReplayed. Every candidate step is computed and compared in constant
// time, so the time taken says nothing about which (if any) matched. The
// caller records the step (session.SecondFactors.AcceptTOTPStep), which
// refuses it atomically if another request took it first.
func CheckCode(secret, code string, now time.Time, lastStep int64) (int64, error) {
	code = NormalizeCode(code)
	valid := len(code) == Digits
	current := Step(now)
	var matched int64 = -1
	for d := int64(-Skew); d <= Skew; d++ {
		step := current + d
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, fmt.Errorf("secondfactor: the stored secret is not base32: %w", err)
		}
		// The latest matching step wins: the one to record.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = step
		}
	}
	switch {
	case !valid || matched < 0:
		return 0, ErrCode
	case matched <= lastStep:
		return 0, ErrReplayed
	}
	return matched, nil
}

// NormalizeCode drops the spaces and dashes people type in a code.
func NormalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, code)
}
