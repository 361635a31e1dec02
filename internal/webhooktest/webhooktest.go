// Package webhooktest checks signed event deliveries with the npm
// standardwebhooks package (conformance/verify-webhooks.mjs), for tests.
package webhooktest

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

// Request is one delivery as a receiver got it.
type Request struct {
	ID, Timestamp, Signature string
	Body                     string
}

// Result is what the npm package made of the requests: how many verified,
// how many tampered copies (the body changed) it rejected, and why any
// failed.
type Result struct {
	Verified         int      `json:"verified"`
	TamperedRejected int      `json:"tamperedRejected"`
	Failures         []string `json:"failures"`
}

// Verify runs conformance/verify-webhooks.mjs over reqs signed with secret
// (whsec_…). Without Node or conformance's node_modules it skips the test,
// or fails it under CI.
func Verify(t testing.TB, secret string, reqs []Request) Result {
	t.Helper()
	dir, err := conformanceDir()
	node, nodeErr := exec.LookPath("node")
	if err == nil {
		err = nodeErr
	}
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
	for _, r := range reqs {
		in.Requests = append(in.Requests, req{map[string]string{
			"webhook-id": r.ID, "webhook-timestamp": r.Timestamp, "webhook-signature": r.Signature}, r.Body})
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
	var res Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("verify-webhooks.mjs printed %q: %v", out, err)
	}
	return res
}

// conformanceDir is conformance/ at the module's root, found upwards from
// the test's package directory.
func conformanceDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "conformance"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
