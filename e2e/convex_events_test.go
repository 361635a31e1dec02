package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Next.js example, whose Convex functions' tests (vitest) replay the
// recorded events.
const nextjsExampleDir = "../examples/nextjs"

// recordedRequest is one delivery as the receiver got it.
type recordedRequest struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// eventRecorder stands in for the Convex deployment's HTTP action: it keeps
// each POST's Standard Webhooks headers and raw body, in arrival order, and
// acknowledges it, except the very first delivery, which it answers 503 so
// that the recording holds a retry of the same webhook-id.
type eventRecorder struct {
	mu       sync.Mutex
	requests []recordedRequest
}

func (r *eventRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.Method != http.MethodPost || req.URL.Path != "/gateway-events" {
		http.Error(w, "not an event delivery", http.StatusBadRequest)
		return
	}
	rec := recordedRequest{Headers: map[string]string{}, Body: string(body)}
	for _, name := range []string{"Content-Type", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
		if v := req.Header.Get(name); v != "" {
			rec.Headers[strings.ToLower(name)] = v
		}
	}
	r.mu.Lock()
	r.requests = append(r.requests, rec)
	first := len(r.requests) == 1
	r.mu.Unlock()
	if first {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// types returns the event types received so far.
func (r *eventRecorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var types []string
	for _, rec := range r.requests {
		var ev struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal([]byte(rec.Body), &ev)
		types = append(types, ev.Type)
	}
	return types
}

// TestConvexReceiverReplaysGatewayEvents runs the built gateway with
// `events { }` pointing at a recorder and the site admin API on, signs a
// user up (password), in again from a second browser, and out of the first,
// and then runs the example's Convex functions under convex-test
// (convex/recorded.spec.ts):
//   - the HTTP action (gatewayEvents.ts) on exactly the requests the gateway
//     sent, the refused first delivery and its retry included: they verify
//     with the npm standardwebhooks package, the users row holds the new
//     user, the retried webhook-id is applied once, and a second replay
//     changes nothing;
//   - the internalAction signOutEverywhere (admin.ts), whose fetch reaches
//     this gateway's site admin API with the secret: the second browser's
//     session ends, and the gateway says so with session.revoked (admin).
func TestConvexReceiverReplaysGatewayEvents(t *testing.T) {
	caddyBin(t) // skips or fails early without the built binary
	node, err := exec.LookPath("node")
	needTool(t, "node", "install Node.js 20.19 or later", err == nil)
	vitest, _ := filepath.Abs(filepath.Join(nextjsExampleDir, "node_modules", ".bin", "vitest"))
	_, err = os.Stat(vitest)
	needTool(t, "vitest", "run npm ci in examples/nextjs (make test does)", err == nil)

	recorder := &eventRecorder{}
	receiver := httptest.NewServer(recorder)
	t.Cleanup(receiver.Close)

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	adminSecret := base64.RawURLEncoding.EncodeToString(key) + "-admin"

	port := freePort(t)
	origin := fmt.Sprintf("http://127.0.0.1:%d", port)
	startCaddy(t, fmt.Sprintf(`{
	admin off
}
%s {
	convex_auth {
		issuer %s
		provider password
		events {
			url %s/gateway-events
			secret {env.CONVEX_AUTH_EVENTS_SECRET}
			initial_backoff 200ms
			max_backoff 1s
		}
		admin_api {
			secret {env.CONVEX_AUTH_ADMIN_SECRET}
		}
	}
	respond "app page"
}
`, origin, origin, receiver.URL), t.TempDir(), origin+"/.well-known/jwks.json",
		"CONVEX_AUTH_EVENTS_SECRET="+secret, "CONVEX_AUTH_ADMIN_SECRET="+adminSecret)

	// Sign up; sign in from a second browser; sign the first out.
	creds := url.Values{"email": {"Ada@Example.com"}, "password": {"correct horse battery"}}
	signIn := func(intent string) *http.Cookie {
		form := url.Values{"intent": {intent}}
		for k, v := range creds {
			form[k] = v
		}
		resp, _ := postForm(t, origin+"/auth/signin/password", form, map[string]string{"Origin": origin})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("password %s: %d", intent, resp.StatusCode)
		}
		return sessionCookie(t, resp)
	}
	first := signIn("signup")
	second := signIn("signin")
	_, body := request(t, "GET", origin+"/auth/session", withCookie(second))
	var current struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal([]byte(body), &current); err != nil || current.User.ID == "" {
		t.Fatalf("/auth/session of the second browser: %v %q", err, body)
	}
	resp, _ := request(t, "POST", origin+"/auth/signout", withCookie(first, map[string]string{"Sec-Fetch-Site": "same-origin"}))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}

	want := []string{"user.created", "session.created", "session.revoked"}
	deadline := time.Now().Add(eventually)
	for !containsAll(recorder.types(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v the receiver has %q, want at least %q", eventually, recorder.types(), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the gateway sent %q", recorder.types())

	recorder.mu.Lock()
	if len(recorder.requests) < 2 || recorder.requests[0].Headers["webhook-id"] != recorder.requests[1].Headers["webhook-id"] {
		recorder.mu.Unlock()
		t.Fatalf("the refused first delivery was not retried next with the same webhook-id: %+v", recorder.requests)
	}
	recording, err := json.MarshalIndent(map[string]any{
		"secret":   secret,
		"expect":   map[string]string{"email": "ada@example.com"},
		"requests": recorder.requests,
		// For signOutEverywhere, against this gateway.
		"gateway":     origin,
		"adminSecret": adminSecret,
		"userId":      current.User.ID,
	}, "", "  ")
	recorder.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "recording.json")
	if err := os.WriteFile(file, recording, 0o600); err != nil {
		t.Fatal(err)
	}

	// Receivers refuse webhook-timestamps more than 5 minutes old: replay now.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, vitest, "run", "convex/recorded.spec.ts")
	cmd.Dir = nextjsExampleDir
	cmd.Env = append(os.Environ(), "CONVEX_AUTH_EVENTS_RECORDING="+file, "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vitest on the recorded events: %v\n%s", err, out)
	}
	// vitest exits 0 when a test skips: both must have run.
	if !strings.Contains(string(out), "2 passed") {
		t.Fatalf("vitest did not run both recorded-gateway tests:\n%s", out)
	}

	// signOutEverywhere ended the second browser's session, and the gateway
	// told the app why.
	if resp, _ := request(t, "GET", origin+"/auth/session", withCookie(second)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the second browser's session after signOutEverywhere: %d, want 401", resp.StatusCode)
	}
	deadline = time.Now().Add(eventually)
	for !recorder.hasRevoked("admin") {
		if time.Now().After(deadline) {
			t.Fatalf("no session.revoked with reason admin after signOutEverywhere; got %q", recorder.types())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasRevoked reports whether a session.revoked with reason arrived.
func (r *eventRecorder) hasRevoked(reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.requests {
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Reason string `json:"reason"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(rec.Body), &ev) == nil && ev.Type == "session.revoked" && ev.Data.Reason == reason {
			return true
		}
	}
	return false
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}
