package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// /auth/health of the built binary follows Redis: 200 while it answers,
// 503 naming the problem in words while it is stopped, 200 again once it
// is started, without a Caddy restart.
func TestHealthFollowsRedis(t *testing.T) {
	redis := redistest.StartServer(t)
	port := freePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	startCaddy(t, fmt.Sprintf(`{
	admin off
	storage file_system %s
}
%s {
	convex_auth {
		issuer https://app.example.com
		redis {
			url %s
			dial_timeout 250ms
			read_timeout 250ms
			write_timeout 250ms
		}
	}
	respond "app page"
}
`, t.TempDir(), site, redis.URL()), t.TempDir(), site+"/auth/health")

	const ok = `{"status":"ok"}`
	const down = `{"status":"unavailable","problems":["session store unreachable"]}`
	waitHealth := func(status int, body string) {
		t.Helper()
		deadline := time.Now().Add(eventually)
		for {
			resp, got := request(t, "GET", site+"/auth/health", nil)
			if resp.StatusCode == status && strings.TrimSpace(got) == body {
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q; want no-store", cc)
				}
				head, _ := request(t, "HEAD", site+"/auth/health", nil)
				if head.StatusCode != status {
					t.Errorf("HEAD: %d; want %d", head.StatusCode, status)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health: %d %s; want %d %s", resp.StatusCode, got, status, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitHealth(http.StatusOK, ok)
	redis.Stop()
	waitHealth(http.StatusServiceUnavailable, down)
	redis.Restart()
	waitHealth(http.StatusOK, ok)
}
