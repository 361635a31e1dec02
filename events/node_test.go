package events

import (
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/webhooktest"
)

// verifyWithStandardWebhooks checks got with the npm standardwebhooks
// package.
func verifyWithStandardWebhooks(t *testing.T, secret string, got []received) (verified, tamperedRejected int, failures []string) {
	t.Helper()
	reqs := make([]webhooktest.Request, len(got))
	for i, r := range got {
		reqs[i] = webhooktest.Request{ID: r.ID, Timestamp: r.Timestamp, Signature: r.Signature, Body: string(r.Body)}
	}
	res := webhooktest.Verify(t, secret, reqs)
	return res.Verified, res.TamperedRejected, res.Failures
}

// Requests signed by the deliverer, first attempts and retries, verify
// with the npm standardwebhooks package, and a tampered body does not.
func TestSignaturesVerifyWithStandardWebhooks(t *testing.T) {
	rc := newReceiver(t)
	secret, sec := testSecret(t)
	q := NewMemoryQueue(0)
	start(t, testDelivery(t, rc.srv.URL, sec, q))
	b := Builder{Realm: "https://app.example.com convex"}
	enqueueAll(t, q,
		b.UserCreated(UserData{ID: "u1", Email: "a@example.com", EmailVerified: true, Name: "Ann ✓", CreatedAt: 1}),
		b.UserBanned("u1", true),
		b.SessionRevoked("s1", "u1", ReasonSignOut),
	)
	got := rc.waitApplied(t, 3)
	verified, tampered, failures := verifyWithStandardWebhooks(t, secret, got)
	if verified != 3 || tampered != 3 || len(failures) > 0 {
		t.Fatalf("standardwebhooks verified %d of 3, rejected %d tampered copies of 3; failures %v", verified, tampered, failures)
	}
}
