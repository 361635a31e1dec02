package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// The built binary's /metrics reports the Redis queue's backlog: events
// the app refuses are pending until it takes them.
func TestEventsBacklogGauge(t *testing.T) {
	rc := newEventReceiver(t)
	rc.down.Store(true)
	redis := redistest.StartServer(t)
	port, adminPort, upstream := freePort(t), freePort(t), eventsUpstream(t)
	origin := fmt.Sprintf("http://127.0.0.1:%d", port)
	startCaddy(t, fmt.Sprintf(`{
	admin 127.0.0.1:%d
}
%s {
	convex_auth {
		issuer %s
		realm backlog-e2e
		redis %s
		trust_upstream_sign_in
		events {
			url %s
			secret {env.TEST_EVENTS_SECRET}
			initial_backoff 200ms
			max_backoff 1s
		}
	}
	reverse_proxy 127.0.0.1:%d
}
`, adminPort, origin, origin, redis.URL(), rc.srv.URL, upstream), t.TempDir(), origin+"/.well-known/jwks.json", "TEST_EVENTS_SECRET="+e2eEventsSecret)

	gauge := func(state string) (float64, bool) {
		_, body := request(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort), nil)
		m := regexp.MustCompile(`(?m)^caddy_convex_auth_events_backlog\{realm="backlog-e2e",state="` + state + `"\} (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(m[1], 64)
		return v, err == nil
	}
	waitGauge := func(state string, want float64) {
		t.Helper()
		deadline := time.Now().Add(eventually)
		for {
			got, ok := gauge(state)
			if ok && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("events_backlog{state=%q} = %v (present: %v); want %v", state, got, ok, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitGauge("pending", 0)
	for _, u := range []string{"user_a", "user_b"} {
		resp, _ := request(t, "POST", origin+"/signin?user="+u, nil)
		sessionCookie(t, resp)
	}
	waitGauge("pending", 2)
	waitGauge("dead", 0)
	rc.down.Store(false)
	rc.waitApplied(t, 2)
	waitGauge("pending", 0)
}
