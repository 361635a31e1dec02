package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// Rotation timing of TestKeyRotationUnderLoad: each key signs for 30 s and
// is published 30 s (the minimum lead) before it signs, so with a 1 s poll
// the second rotation happens about 62 s after the start.
const (
	rotationTestPoll        = "1s"
	rotationTestLoad        = 68 * time.Second
	rotationTestTokenTTL    = "30s"
	rotationTestLateVerify  = 3 * time.Second // before a token's exp
	rotationTestReloadAfter = 20 * time.Second
)

// rotationLoadSummary is what conformance/rotation-load.mjs prints.
type rotationLoadSummary struct {
	Requests, RequestErrors, Retries, Verified, LateVerified, Failures int
	Kids                                                               []struct{ Kid, FirstSeen string }
	Samples                                                            []string
}

// TestKeyRotationUnderLoad runs two gateways sharing one Caddy storage and
// one Redis, rotating their generated key every 30 s, under continuous load
// for two rotations: tokens from /auth/token of both, alternately, each
// verified by jose (npm) against each gateway's JWKS, cached as the
// documents' Cache-Control allows. No verification may fail, including a
// second one shortly before each sampled token expires; one gateway is
// reloaded in the middle; both end publishing the same JWKS.
func TestKeyRotationUnderLoad(t *testing.T) {
	bin := caddyBin(t)
	node, err := exec.LookPath("node")
	needTool(t, "node", "install Node.js 20 or later", err == nil)
	script, _ := filepath.Abs(filepath.Join("..", "conformance", "rotation-load.mjs"))
	_, err = os.Stat(filepath.Join("..", "conformance", "node_modules", "jose"))
	needTool(t, "jose", "run npm ci in conformance (make test does)", err == nil)

	redis := redistest.StartServer(t)
	storage := t.TempDir()
	upstreamPort, adminPort := freePort(t), freePort(t)
	ports := []int{freePort(t), freePort(t)}
	urls := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	issuerURL := urls[0] // one issuer for both, as behind a load balancer
	config := func(i int, tokenReuse string) string {
		admin := "admin off"
		if i == 1 {
			admin = fmt.Sprintf("admin 127.0.0.1:%d", adminPort)
		}
		c := fmt.Sprintf(`{
	%s
	storage file_system %s
}
http://127.0.0.1:%d {
	convex_auth {
		issuer %s
		redis %s
		token_ttl %s
		token_reuse %s
		key_rotation 30s
		key_publish_lead 30s
		trust_upstream_sign_in
	}
	reverse_proxy 127.0.0.1:%d
}
`, admin, storage, ports[i], issuerURL, redis.URL(), rotationTestTokenTTL, tokenReuse, upstreamPort)
		if i == 0 {
			c += signInUpstreamByQuery(upstreamPort)
		}
		return c
	}
	paths := make([]string, 2)
	procs := make([]*caddyProcess, 2)
	done := make(chan struct{}, 2)
	for i := range 2 {
		paths[i] = filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(paths[i], []byte(config(i, "5s")), 0o644); err != nil {
			t.Fatal(err)
		}
		go func() {
			defer func() { done <- struct{}{} }()
			procs[i] = startCaddyFile(t, bin, paths[i], t.TempDir(), urls[i]+"/.well-known/jwks.json", "CONVEX_AUTH_TEST_KEY_POLL_INTERVAL="+rotationTestPoll)
		}()
	}
	<-done
	<-done
	if t.Failed() {
		t.FailNow()
	}

	var cookies []string
	for n := range 3 {
		resp, _ := request(t, "POST", fmt.Sprintf("%s/signin?user=user%d", urls[n%2], n), nil)
		c := sessionCookie(t, resp)
		cookies = append(cookies, c.Name+"="+c.Value)
	}

	cfg, _ := json.Marshal(map[string]any{
		"tokenURLs":                []string{urls[0] + "/auth/token", urls[1] + "/auth/token"},
		"jwksURLs":                 []string{urls[0] + "/.well-known/jwks.json", urls[1] + "/.well-known/jwks.json"},
		"issuer":                   issuerURL,
		"audience":                 "convex",
		"cookies":                  cookies,
		"durationMs":               rotationTestLoad.Milliseconds(),
		"workers":                  4,
		"lateVerifyBeforeExpiryMs": rotationTestLateVerify.Milliseconds(),
	})
	// The verifier ends by itself about one token lifetime after the load;
	// this only ends a hung one.
	ctx, cancel := context.WithTimeout(context.Background(), rotationTestLoad+5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, string(cfg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()

	// Reload one gateway mid-run (a changed token_reuse): its keys stay.
	time.Sleep(rotationTestReloadAfter)
	_, jwksBefore := request(t, "GET", urls[1]+"/.well-known/jwks.json", nil)
	if err := os.WriteFile(paths[1], []byte(config(1, "4s")), 0o644); err != nil {
		t.Fatal(err)
	}
	reload := exec.Command(bin, "reload", "--config", paths[1], "--adapter", "caddyfile", "--address", fmt.Sprintf("127.0.0.1:%d", adminPort))
	if out, err := reload.CombinedOutput(); err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	_, jwksAfter := request(t, "GET", urls[1]+"/.well-known/jwks.json", nil)
	if jwksKids(t, jwksAfter)[0] != jwksKids(t, jwksBefore)[0] {
		t.Errorf("the reload changed the signing key:\nbefore %s\nafter  %s", jwksBefore, jwksAfter)
	}

	if err := cmd.Wait(); err != nil {
		t.Fatalf("the verifier failed after %v: %v\n%s", time.Since(started), err, stderr.String())
	}
	t.Logf("verifier ran %v", time.Since(started))
	var sum rotationLoadSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("verifier output %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	// Retries are requests sent again after a connection closed under
	// them (the reload closes idle keep-alive connections).
	t.Logf("%d token requests (%d errors, %d retried), %d fresh and %d late verifications, %d failures; kids seen: %+v",
		sum.Requests, sum.RequestErrors, sum.Retries, sum.Verified, sum.LateVerified, sum.Failures, sum.Kids)
	for _, s := range sum.Samples {
		t.Errorf("failure: %s", s)
	}
	if sum.Failures != 0 || sum.RequestErrors != 0 {
		t.Errorf("%d verifications and %d token requests failed, want 0", sum.Failures, sum.RequestErrors)
	}
	if len(sum.Kids) < 3 {
		t.Errorf("tokens carried %d kids, want at least 3 (two rotations)", len(sum.Kids))
	}
	if sum.Verified < 100 || sum.LateVerified == 0 {
		t.Errorf("only %d fresh and %d late verifications", sum.Verified, sum.LateVerified)
	}

	// Both publish the same set, allowing for one poll of skew.
	deadline := time.Now().Add(eventually)
	for {
		_, a := request(t, "GET", urls[0]+"/.well-known/jwks.json", nil)
		_, b := request(t, "GET", urls[1]+"/.well-known/jwks.json", nil)
		if a == b {
			t.Logf("both gateways publish %v", jwksKids(t, a))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateways publish different JWKS:\n%s\n%s", a, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, p := range procs {
		if n := strings.Count(p.Log(), "signing keyring advanced"); n > 0 {
			t.Logf("instance %d advanced the keyring %d times", i, n)
		}
		if strings.Contains(p.Log(), "panic") {
			t.Errorf("instance %d logged a panic", i)
		}
	}
}
