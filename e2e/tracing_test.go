package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// exportedSpan is the part of a span the console exporter prints that the
// test reads.
type exportedSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
	Links []struct {
		SpanContext struct{ TraceID, SpanID string }
	}
	InstrumentationScope struct{ Name string }
}

func (s exportedSpan) attr(key string) any {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.Value
		}
	}
	return nil
}

// Under Caddy's `tracing` directive with OTEL_TRACES_EXPORTER=console, one
// trace holds Caddy's HTTP span, the gateway's lookup and mint spans under
// it, and the traceparent the upstream receives; the event the sign-in
// caused is delivered in a span linked to the sign-in's trace. Nothing the
// exporter prints holds the cookie, the token or the email.
func TestTracingOneTraceThroughTheGateway(t *testing.T) {
	type seen struct{ path, traceparent, token string }
	var mu sync.Mutex
	var upstream []seen
	const email = "ada@example.com"
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstream = append(upstream, seen{r.URL.Path, r.Header.Get("traceparent"), r.Header.Get("X-Convex-Token")})
		mu.Unlock()
		switch r.URL.Path {
		case "/signin":
			w.Header().Set("Convex-Auth-Sign-In", `{"sub":"user-traced","email":"`+email+`","email_verified":true}`)
		case "/events":
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.WriteString(w, "app page")
	}))
	t.Cleanup(app.Close)
	upstreamSeen := func(path string) []seen {
		mu.Lock()
		defer mu.Unlock()
		var out []seen
		for _, s := range upstream {
			if s.path == path {
				out = append(out, s)
			}
		}
		return out
	}

	port, adminPort := freePort(t), freePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	caddyfile := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	storage file_system %s
}
%s {
	tracing {
		span gateway
	}
	convex_auth {
		issuer https://app.example.com
		protect /loggedin*
		trust_upstream_sign_in
		events {
			url %s/events
			secret %s
		}
	}
	reverse_proxy %s
}
`, adminPort, t.TempDir(), site, app.URL, e2eEventsSecret, strings.TrimPrefix(app.URL, "http://"))
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddyBin(t), "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = isolatedEnv(t.TempDir(), "OTEL_TRACES_EXPORTER=console", "OTEL_SERVICE_NAME=convex-auth-e2e")
	// Spans go to stdout, Caddy's log to stderr: kept apart.
	stdout, stderr := &caddyProcess{}, &caddyProcess{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(startTimeout):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("caddy did not stop within %v of SIGTERM", startTimeout)
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("caddy stderr:\n%s\nstdout:\n%s", stderr.Log(), stdout.Log())
		}
	})
	for deadline := time.Now().Add(eventually); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(site + "/.well-known/jwks.json"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy not ready after 30s:\n%s", stderr.Log())
		}
	}

	resp, _ := request(t, "POST", site+"/signin", nil)
	cookie := sessionCookie(t, resp)
	resp, body := request(t, "GET", site+"/loggedin", withCookie(cookie))
	if resp.StatusCode != http.StatusOK || body != "app page" {
		t.Fatalf("/loggedin: %d %s", resp.StatusCode, body)
	}
	page := upstreamSeen("/loggedin")
	if len(page) != 1 || page[0].token == "" || page[0].traceparent == "" {
		t.Fatalf("upstream saw %+v; want one request with a token and a traceparent", page)
	}
	// Counted once its attempt, and so its span, has ended.
	delivered := regexp.MustCompile(`(?m)^caddy_convex_auth_events_delivered_total 1$`)
	for deadline := time.Now().Add(eventually); ; time.Sleep(50 * time.Millisecond) {
		if _, metrics := request(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort), nil); delivered.MatchString(metrics) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session.created was not delivered within %v (the app saw %d posts)", eventually, len(upstreamSeen("/events")))
		}
	}
	signIn := upstreamSeen("/signin")

	stop() // flushes the batched spans
	out := stdout.Log()
	var spans []exportedSpan
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var s exportedSpan
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("stdout is not a stream of spans: %v\n%s", err, out)
		}
		spans = append(spans, s)
	}

	// traceparent: 00-<trace id>-<parent span id>-<flags>
	tp := strings.Split(page[0].traceparent, "-")
	if len(tp) != 4 {
		t.Fatalf("upstream traceparent %q", page[0].traceparent)
	}
	traceID, caddySpanID := tp[1], tp[2]
	var caddySpan *exportedSpan
	children := map[string]exportedSpan{}
	for i, s := range spans {
		if s.SpanContext.TraceID != traceID {
			continue
		}
		if s.SpanContext.SpanID == caddySpanID {
			caddySpan = &spans[i]
		}
		if s.InstrumentationScope.Name == "github.com/convex-auth/caddy-convex-auth" {
			if s.Parent.SpanID != caddySpanID {
				t.Errorf("%s span's parent is %s; want Caddy's span %s", s.Name, s.Parent.SpanID, caddySpanID)
			}
			children[s.Name] = s
		}
	}
	if caddySpan == nil || caddySpan.Name != "gateway" {
		t.Fatalf("no Caddy span %s named gateway in trace %s; spans:\n%s", caddySpanID, traceID, out)
	}
	lookup, ok := children["convex_auth.session.lookup"]
	if !ok {
		t.Fatalf("no session lookup span in the page's trace; spans:\n%s", out)
	}
	if hit, ok := lookup.attr("convex_auth.session.cache_hit").(bool); !ok || hit {
		t.Errorf("lookup cache_hit = %v; want false (the in-process store has no cache)", lookup.attr("convex_auth.session.cache_hit"))
	}
	if _, ok := children["convex_auth.token.mint"]; !ok {
		t.Errorf("no mint span in the page's trace; spans:\n%s", out)
	}

	// The sign-in's trace is the one session.created's delivery links to.
	if len(signIn) != 1 || signIn[0].traceparent == "" {
		t.Fatalf("upstream saw sign-ins %+v", signIn)
	}
	signInTrace := strings.Split(signIn[0].traceparent, "-")[1]
	linked := false
	for _, s := range spans {
		if s.Name != "convex_auth.events.deliver" {
			continue
		}
		for _, l := range s.Links {
			linked = linked || l.SpanContext.TraceID == signInTrace
		}
	}
	if !linked {
		t.Errorf("no delivery span links to the sign-in's trace %s; spans:\n%s", signInTrace, out)
	}

	for what, secret := range map[string]string{"session cookie": cookie.Value, "token": page[0].token, "email": email} {
		if strings.Contains(out, secret) {
			t.Errorf("the exported spans hold the %s", what)
		}
	}
}
