package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// randomBytes of entropy in state, nonce and magic-link tokens.
const randomBytes = 32

func storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
}

// randomToken is 256 random bits, base64url.
func randomToken() string {
	var b [randomBytes]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (Go 1.24+ crashes instead)
	return b64url(b[:])
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// normalizeAddress checks a typed email address and returns it normalised.
// It accepts a bare address only: no display name, no angle brackets.
func normalizeAddress(raw string) (string, bool) {
	email := session.NormalizeEmail(raw)
	if email == "" || len(email) > session.MaxEmailBytes || strings.ContainsAny(email, "\r\n<>,; ") {
		return "", false
	}
	a, err := netmail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email, "@") {
		return "", false
	}
	return email, true
}
