package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// faultGateway is one Caddy process: the gateway on gatewayURL in front of
// an app site in the same process that echoes whether a token came with
// the request, and an admin endpoint for /metrics and reloads.
type faultGateway struct {
	proc       *caddyProcess
	gatewayURL string
	adminAddr  string
	configPath string
	config     func(tokenTTL string) string
}

func startFaultGateway(t *testing.T, redisURL string) *faultGateway {
	g := &faultGateway{}
	gatewayPort, appPort, adminPort := freePort(t), freePort(t), freePort(t)
	g.gatewayURL = fmt.Sprintf("http://127.0.0.1:%d", gatewayPort)
	g.adminAddr = fmt.Sprintf("127.0.0.1:%d", adminPort)
	storage := t.TempDir()
	g.config = func(tokenTTL string) string {
		return fmt.Sprintf(`{
	admin %s
	storage file_system %s
	metrics
}
http://127.0.0.1:%d {
	convex_auth {
		issuer https://app.example.com
		token_ttl %s
		redis %s
		protect /loggedin*
		trust_upstream_sign_in
	}
	reverse_proxy 127.0.0.1:%d
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	route /signin {
		header Convex-Auth-Sign-In "{\"sub\":\"{query.user}\"}"
		respond "signed in"
	}
	respond "app page token={header.X-Convex-Token}"
}
`, g.adminAddr, storage, gatewayPort, tokenTTL, redisURL, appPort, appPort)
	}
	g.configPath = filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(g.configPath, []byte(g.config("5m")), 0o644); err != nil {
		t.Fatal(err)
	}
	g.proc = startCaddyFile(t, caddyBin(t), g.configPath, t.TempDir(), g.gatewayURL+"/.well-known/jwks.json")
	return g
}

func (g *faultGateway) signIn(t *testing.T, user string) *http.Cookie {
	t.Helper()
	resp, _ := request(t, "POST", g.gatewayURL+"/signin?user="+user, nil)
	return sessionCookie(t, resp)
}

// metric reads one value from Caddy's /metrics on the admin endpoint.
func (g *faultGateway) metric(t *testing.T, name string) float64 {
	t.Helper()
	_, body := request(t, "GET", "http://"+g.adminAddr+"/metrics", nil)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s not found", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitProtected polls /loggedin with each cookie until it answers status,
// for at most eventually, and returns when the last one did.
func (g *faultGateway) waitProtected(t *testing.T, cookies []*http.Cookie, status int, what string) time.Time {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for _, c := range cookies {
		for {
			resp, _ := request(t, "GET", g.gatewayURL+"/loggedin", withCookie(c))
			if resp.StatusCode == status {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v (last status %d)", what, eventually, resp.StatusCode)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Now()
}

// outcome is one request of the load.
type outcome struct {
	start     time.Time
	end       time.Time
	protected bool
	status    int
	body      string
	err       error
}

// load sends requests from workers until ctx ends: protected paths with one
// of the cookies, and open paths with none.
func load(ctx context.Context, url string, cookies []*http.Cookie, workers int) <-chan outcome {
	out := make(chan outcome, 1<<16)
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	c := &http.Client{Transport: tr, Timeout: requestTimeout}
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				k := int(n.Add(1))
				o := outcome{start: time.Now(), protected: k%2 == 0}
				req, _ := http.NewRequest("GET", url+"/open", nil)
				if o.protected {
					req, _ = http.NewRequest("GET", url+"/loggedin", nil)
					ck := cookies[(k+w)%len(cookies)]
					req.Header.Set("Cookie", ck.Name+"="+ck.Value)
				}
				resp, err := c.Do(req)
				if err != nil {
					o.err = err
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					o.status, o.body = resp.StatusCode, string(b)
				}
				o.end = time.Now()
				select {
				case out <- o:
				default: // a full buffer only loses samples, never blocks load
				}
			}
		}()
	}
	go func() { wg.Wait(); tr.CloseIdleConnections(); close(out) }()
	return out
}

func collect(ch <-chan outcome) []outcome {
	var all []outcome
	for o := range ch {
		all = append(all, o)
	}
	return all
}

func servedPage(o outcome) bool {
	return o.status == http.StatusOK && strings.HasPrefix(o.body, "app page")
}

func hasToken(o outcome) bool {
	return strings.HasPrefix(o.body, "app page token=ey")
}

// TestFaultRedisDownUnderLoad stops Redis while the gateway serves load and
// starts it again: once the gateway has noticed, protected paths answer 503
// and never the page, open paths are forwarded without a token, nothing
// leaks or panics, and full service comes back with no Caddy restart. Redis
// runs with AOF, so sessions survive. How long noticing and recovering take
// is logged here and measured by make bench-load: a starved CPU stretches
// both, so the test waits for them instead of timing them.
func TestFaultRedisDownUnderLoad(t *testing.T) {
	redis := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	g := startFaultGateway(t, redis.URL())
	var cookies []*http.Cookie
	for i := range 20 {
		cookies = append(cookies, g.signIn(t, fmt.Sprintf("user%d", i)))
	}
	const workers = 8

	// Warm up, then take the baseline.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	warm := collect(load(ctx, g.gatewayURL, cookies, workers))
	cancel()
	for _, o := range warm {
		if o.err != nil || !servedPage(o) || o.protected != hasToken(o) {
			t.Fatalf("with redis up: %+v", o)
		}
	}
	goroutinesBefore := g.metric(t, "go_goroutines")
	rssBefore := g.metric(t, "process_resident_memory_bytes")

	// Redis down under load until the gateway has noticed, and a second
	// more; then back until every session is served again.
	ctx, cancel = context.WithCancel(context.Background())
	ch := load(ctx, g.gatewayURL, cookies, workers)
	time.Sleep(500 * time.Millisecond)
	redis.Stop()
	stopped := time.Now()
	noticed := g.waitProtected(t, cookies[:1], http.StatusServiceUnavailable, "a protected request answered 503 after redis stopped")
	time.Sleep(time.Second)
	// Redis answers before Restart returns: the down window ends when the
	// restart begins.
	restarting := time.Now()
	redis.Restart()
	restarted := time.Now()
	recovered := g.waitProtected(t, cookies, http.StatusOK, "every session served again after redis restarted")
	time.Sleep(time.Second)
	cancel()
	all := collect(ch)

	var down, downProtected, downOpen, leaked, failed, failedAfter int
	var lateCached time.Duration
	for _, o := range all {
		if o.err != nil || o.status >= 500 && o.status != http.StatusServiceUnavailable {
			failed++
			continue
		}
		// Judged: requests wholly within the outage. One still in flight
		// when the restart began may have reached the restarted Redis.
		if o.start.After(stopped) && o.end.Before(restarting) {
			down++
			if o.protected {
				downProtected++
				switch {
				case servedPage(o) && o.start.Before(noticed):
					// Served from the cache before the gateway noticed.
					lateCached = max(lateCached, o.start.Sub(stopped))
				case servedPage(o):
					t.Errorf("protected path with redis down, after the gateway noticed: served the page")
				case o.status != http.StatusServiceUnavailable:
					t.Errorf("protected path with redis down: status %d %q", o.status, o.body)
				}
			} else {
				downOpen++
				if !servedPage(o) {
					t.Errorf("open path with redis down: status %d %q", o.status, o.body)
				}
				if hasToken(o) {
					leaked++
				}
			}
		}
		if o.start.After(recovered) && (!servedPage(o) || o.protected != hasToken(o)) {
			failedAfter++
		}
	}
	t.Logf("%d requests; with redis down: %d (%d protected, %d open); the gateway noticed %v after the stop, and served a cached page to a request that started up to %v after it; %d transport errors or other 5xx",
		len(all), down, downProtected, downOpen, noticed.Sub(stopped).Round(time.Millisecond), lateCached.Round(time.Millisecond), failed)
	if failed > 0 {
		t.Errorf("%d requests failed with a transport error or an unexpected 5xx", failed)
	}
	if downProtected == 0 || downOpen == 0 {
		t.Fatal("the load sent nothing while redis was down")
	}
	if leaked > 0 {
		t.Errorf("%d open-path requests carried a token while the store was down", leaked)
	}
	t.Logf("full service %v after redis restarted (sessions kept by AOF)", recovered.Sub(restarted).Round(time.Millisecond))
	if failedAfter > 0 {
		t.Errorf("%d requests after full service came back were not served as before the outage", failedAfter)
	}

	goroutinesAfter := g.metric(t, "go_goroutines")
	rssAfter := g.metric(t, "process_resident_memory_bytes")
	t.Logf("goroutines %v → %v, RSS %.1f MiB → %.1f MiB", goroutinesBefore, goroutinesAfter, rssBefore/(1<<20), rssAfter/(1<<20))
	if goroutinesAfter > goroutinesBefore+25 {
		t.Errorf("goroutines grew from %v to %v across the outage", goroutinesBefore, goroutinesAfter)
	}
	if rssAfter > rssBefore*1.5+32<<20 {
		t.Errorf("RSS grew from %.0f to %.0f bytes across the outage", rssBefore, rssAfter)
	}
	if strings.Contains(g.proc.Log(), "panic") {
		t.Error("caddy logged a panic")
	}
}

// TestReloadUnderLoad reloads a changed config while the gateway serves
// load: no request fails, sessions and the signing key stay.
func TestReloadUnderLoad(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startFaultGateway(t, redis.URL())
	var cookies []*http.Cookie
	for i := range 10 {
		cookies = append(cookies, g.signIn(t, fmt.Sprintf("user%d", i)))
	}
	_, jwksBefore := request(t, "GET", g.gatewayURL+"/.well-known/jwks.json", nil)

	ctx, cancel := context.WithCancel(context.Background())
	ch := load(ctx, g.gatewayURL, cookies, 8)
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(g.configPath, []byte(g.config("10m")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddyBin(t), "reload", "--config", g.configPath, "--adapter", "caddyfile", "--address", g.adminAddr)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	cancel()
	all := collect(ch)
	bad := 0
	for _, o := range all {
		if o.err != nil || !servedPage(o) || o.protected != hasToken(o) {
			bad++
			if bad <= 5 {
				t.Errorf("during reload: status %d body %q err %v", o.status, o.body, o.err)
			}
		}
	}
	t.Logf("%d requests across the reload, %d failed", len(all), bad)

	_, jwksAfter := request(t, "GET", g.gatewayURL+"/.well-known/jwks.json", nil)
	if jwksAfter != jwksBefore {
		t.Error("the signing key changed across the reload")
	}
	for _, c := range cookies {
		if resp, body := request(t, "GET", g.gatewayURL+"/loggedin", withCookie(c)); resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "app page token=ey") {
			t.Fatalf("a session did not survive the reload: %d %q", resp.StatusCode, body)
		}
	}
	_, tok := request(t, "GET", g.gatewayURL+"/auth/token", withCookie(cookies[0]))
	if !strings.Contains(tok, `"token"`) {
		t.Fatalf("/auth/token after reload: %s", tok)
	}
}
