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
	"sort"
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
		redis {
			url %s
			dial_timeout 250ms
			read_timeout 250ms
			write_timeout 250ms
		}
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
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
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
// starts it again: protected paths answer 503 and never the page, open paths
// are forwarded without a token, nothing leaks, and full service comes back
// within 2 s with no Caddy restart. Redis runs with AOF, so sessions survive.
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

	// Redis down for 3 s under load.
	ctx, cancel = context.WithCancel(context.Background())
	ch := load(ctx, g.gatewayURL, cookies, workers)
	time.Sleep(500 * time.Millisecond)
	redis.Stop()
	stopped := time.Now()
	time.Sleep(3 * time.Second)
	// Redis answers before Restart returns: the down window ends when the
	// restart begins.
	restarting := time.Now()
	redis.Restart()
	restarted := time.Now()
	time.Sleep(3 * time.Second)
	cancel()
	all := collect(ch)

	var down, downProtected, downOpen, leaked, failed int
	var lateCached time.Duration
	var recovered time.Time
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
				if servedPage(o) {
					// Only a request already past its session check when
					// Redis died may still see the page.
					lateCached = max(lateCached, o.start.Sub(stopped))
				} else if o.status != http.StatusServiceUnavailable {
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
	}
	// Recovered: the first protected success after the last protected
	// failure that started after the restart.
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	for _, o := range all {
		if !o.protected || !o.start.After(restarted) {
			continue
		}
		switch {
		case !servedPage(o):
			recovered = time.Time{}
		case recovered.IsZero():
			recovered = o.start
		}
	}
	t.Logf("%d requests; with redis down: %d (%d protected, %d open); protected page served up to %v after the stop; %d transport errors or other 5xx",
		len(all), down, downProtected, downOpen, lateCached, failed)
	if failed > 0 {
		t.Errorf("%d requests failed with a transport error or an unexpected 5xx", failed)
	}
	if downProtected == 0 || downOpen == 0 {
		t.Fatal("the load sent nothing while redis was down")
	}
	// The cache is trusted only while the subscription is up, so this is
	// how long the gateway takes to notice Redis went away: on loopback a
	// reset, but scheduling on a loaded 2-core machine under -race has
	// taken 74 ms. The promise is the design's revocation bound, 1 s.
	if lateCached > time.Second {
		t.Errorf("a protected page was served %v after redis stopped: only in-flight requests may see it", lateCached)
	}
	if leaked > 0 {
		t.Errorf("%d open-path requests carried a token while the store was down", leaked)
	}
	if recovered.IsZero() {
		t.Fatal("protected paths never recovered after redis came back")
	}
	recovery := recovered.Sub(restarted)
	t.Logf("full service %v after redis restarted (sessions kept by AOF)", recovery)
	if recovery > 2*time.Second {
		t.Errorf("recovery took %v, want ≤ 2s", recovery)
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
