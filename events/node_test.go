package events

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// VerifyWithStandardWebhooks runs conformance/verify-webhooks.mjs (the npm
// standardwebhooks package) over got. It skips when Node or the package is
// missing, except in CI.
func verifyWithStandardWebhooks(t *testing.T, secret string, got []received) (verified, tamperedRejected int, failures []string) {
	t.Helper()
	node, err := exec.LookPath("node")
	dir, _ := filepath.Abs(filepath.Join("..", "conformance"))
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node or conformance/node_modules/standardwebhooks is missing: %v (make test runs npm ci)", err)
		}
		t.Skipf("node or conformance/node_modules/standardwebhooks is missing (run npm ci in conformance): %v", err)
	}
	type req struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	in := struct {
		Secret   string `json:"secret"`
		Requests []req  `json:"requests"`
	}{Secret: secret}
	for _, r := range got {
		in.Requests = append(in.Requests, req{map[string]string{HeaderID: r.ID, HeaderTimestamp: r.Timestamp, HeaderSignature: r.Signature}, string(r.Body)})
	}
	raw, _ := json.Marshal(in)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "verify-webhooks.mjs"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify-webhooks.mjs: %v: %s", err, stderr.String())
	}
	var res struct {
		Verified         int      `json:"verified"`
		Failures         []string `json:"failures"`
		TamperedRejected int      `json:"tamperedRejected"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("verify-webhooks.mjs printed %q: %v", out, err)
	}
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
	got := rc.waitApplied(t, 3, 5*time.Second)
	verified, tampered, failures := verifyWithStandardWebhooks(t, secret, got)
	if verified != 3 || tampered != 3 || len(failures) > 0 {
		t.Fatalf("standardwebhooks verified %d of 3, rejected %d tampered copies of 3; failures %v", verified, tampered, failures)
	}
}
