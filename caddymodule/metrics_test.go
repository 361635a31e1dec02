package caddymodule

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// scrapeMetrics reads Caddy's admin /metrics into series → value, the
// series written as in the exposition format (labels sorted by name).
func scrapeMetrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://localhost:" + strconv.Itoa(adminPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	series := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_convex_auth_") {
			continue
		}
		// The value follows the last space: label values may hold spaces
		// (a default realm is "<issuer> <application_id>").
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, value := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		series[name] = v
	}
	return series
}

// TestGatewayMetrics drives a request of each outcome, sign-ins that
// succeed and fail, reused tokens and a store outage through an in-process
// Caddy, and reads the counters back from the admin endpoint's /metrics.
// The collectors live as long as the process, so the test checks deltas.
func TestGatewayMetrics(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, "", "redis {\n\t\t\turl "+redis.URL()+"\n\t\t\tdial_timeout 200ms\n\t\t\tread_timeout 200ms\n\t\t}\n\t\tprovider password")
	before := scrapeMetrics(t)
	for _, name := range []string{
		`caddy_convex_auth_requests_total{outcome="store_error"}`,
		`caddy_convex_auth_sign_ins_total{provider="password",result="failure"}`,
		`caddy_convex_auth_sign_ins_total{provider="upstream",result="success"}`,
		`caddy_convex_auth_tokens_total{kind="reused"}`,
		`caddy_convex_auth_store_errors_total{operation="lookup"}`,
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("%s is not published before it is first counted", name)
		}
	}

	sess := g.signIn("metrics-user", nil) // upstream success; the request itself is anonymous
	if resp, _ := g.do("POST", "/app/signin-malformed", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("malformed upstream sign-in: %d", resp.StatusCode)
	}
	g.do("GET", "/open", nil)                                                 // anonymous
	g.do("GET", "/loggedin", map[string]string{"Accept": "text/html"})        // redirected
	g.do("GET", "/loggedin", map[string]string{"Accept": "application/json"}) // rejected
	for range 3 {                                                             // authenticated: one mint, then reuse
		if resp, _ := g.do("GET", "/loggedin", cookieHeader(sess)); resp.StatusCode != http.StatusOK {
			t.Fatalf("signed in: %d", resp.StatusCode)
		}
	}

	c := browserClient()
	signUp := url.Values{"intent": {"signup"}, "email": {"metrics@example.com"}, "password": {"correct horse"}}
	if resp, _ := send(t, c, "POST", gatewayOrigin+"/auth/signin/password", signUp, sameOriginPost); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password sign-up: %d", resp.StatusCode)
	}
	wrong := url.Values{"intent": {"signin"}, "email": {"metrics@example.com"}, "password": {"wrong"}}
	if resp, _ := send(t, browserClient(), "POST", gatewayOrigin+"/auth/signin/password", wrong, scriptPost); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	// Not a completion: the sign-in page.
	send(t, browserClient(), "GET", gatewayOrigin+"/auth/signin", nil, navigate)

	// A session never looked up, so the store's local cache cannot answer.
	uncached := g.signIn("metrics-user-2", nil)
	redis.Stop()
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(uncached)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("store down: %d", resp.StatusCode)
	}
	if resp, _ := g.do("GET", "/open", cookieHeader(uncached)); resp.StatusCode != http.StatusOK {
		t.Fatalf("store down, open path: %d", resp.StatusCode)
	}

	after := scrapeMetrics(t)
	delta := func(series string) float64 { return after[series] - before[series] }
	for series, want := range map[string]float64{
		`caddy_convex_auth_requests_total{outcome="authenticated"}`:              3,
		`caddy_convex_auth_requests_total{outcome="anonymous"}`:                  4, // 2 sign-ins, malformed sign-in, /open
		`caddy_convex_auth_requests_total{outcome="redirected"}`:                 1,
		`caddy_convex_auth_requests_total{outcome="rejected"}`:                   1,
		`caddy_convex_auth_requests_total{outcome="store_error"}`:                2,
		`caddy_convex_auth_requests_total{outcome="token_error"}`:                0,
		`caddy_convex_auth_sign_ins_total{provider="upstream",result="success"}`: 2,
		`caddy_convex_auth_sign_ins_total{provider="upstream",result="failure"}`: 1,
		`caddy_convex_auth_sign_ins_total{provider="password",result="success"}`: 1,
		`caddy_convex_auth_sign_ins_total{provider="password",result="failure"}`: 1,
		`caddy_convex_auth_tokens_total{kind="minted"}`:                          1,
		`caddy_convex_auth_tokens_total{kind="reused"}`:                          2,
		`caddy_convex_auth_store_errors_total{operation="lookup"}`:               2,
		`caddy_convex_auth_store_duration_seconds_count{operation="create"}`:     3, // 2 upstream and 1 password sign-ins
		`caddy_convex_auth_store_duration_seconds_count{operation="lookup"}`:     5, // 3 signed in, 2 with the store down
		`caddy_convex_auth_store_errors_total{operation="create"}`:               0,
	} {
		if got := delta(series); got != want {
			t.Errorf("%s rose by %v, want %v", series, got, want)
		}
	}
	if sum := delta(`caddy_convex_auth_store_duration_seconds_sum{operation="lookup"}`); sum <= 0 {
		t.Errorf("lookup latency sum rose by %v, want > 0", sum)
	}
	// Labels stay within their fixed sets.
	for series := range after {
		if strings.Contains(series, "provider=") && !strings.Contains(series, `provider="password"`) && !strings.Contains(series, `provider="upstream"`) {
			t.Errorf("unexpected provider label: %s", series)
		}
	}
}

// TestRegisterMetricsTwice: every handler of a config and every reloaded
// config registers the same collectors; that must not fail.
func TestRegisterMetricsTwice(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	for range 2 {
		if err := registerMetrics(ctx, []string{"github"}); err != nil {
			t.Fatal(err)
		}
	}
	// A collector of another kind under the same name is still an error.
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "caddy_convex_auth_tokens_total", Help: "x"})
	if err := ctx.GetMetricsRegistry().Register(clash); err == nil {
		t.Fatal("a clashing collector registered")
	}
}
