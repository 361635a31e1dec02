package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts a Standard Webhooks secret.
const SecretPrefix = "whsec_"

// MinSecretBytes is the shortest decoded secret accepted (svix and
// standardwebhooks generate 24 to 32 random bytes).
const MinSecretBytes = 24

// ErrBadSecret wraps every rejected secret.
var ErrBadSecret = errors.New("events: bad secret")

// Secret is a parsed signing secret.
type Secret struct{ key []byte }

// ParseSecret reads a "whsec_<base64>" secret.
func ParseSecret(s string) (Secret, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: it must start with %s (generate one with `openssl rand -base64 32` and put %s in front)", ErrBadSecret, SecretPrefix, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: the part after %s is not standard base64: %w", ErrBadSecret, SecretPrefix, err)
	}
	if len(key) < MinSecretBytes {
		return Secret{}, fmt.Errorf("%w: it holds %d bytes, at least %d are needed", ErrBadSecret, len(key), MinSecretBytes)
	}
	return Secret{key: key}, nil
}

// Sign returns the webhook-signature value of one attempt: "v1," and the
// base64 HMAC-SHA256 of "<id>.<timestamp>.<body>".
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SetHeaders signs an attempt afresh: the event's ID, ts as its timestamp.
func (s Secret) SetHeaders(h http.Header, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(id, ts, body))
}
