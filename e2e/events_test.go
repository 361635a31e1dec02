package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/internal/webhooktest"
)

// The secret of these tests, as standardwebhooks generates them.
const e2eEventsSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

type gotEvent struct {
	ID, Timestamp, Signature string
	Body                     string
	Type                     string
	UserID                   string
	SessionID                string
	Reason                   string
}

// eventReceiver is the app's events endpoint: it checks the signature,
// answers 503 while down, and applies each webhook-id once.
type eventReceiver struct {
	srv     *httptest.Server
	down    atomic.Bool
	mu      sync.Mutex
	all     []gotEvent // every request that was answered 2xx
	applied []gotEvent // deduped on webhook-id
	seen    map[string]bool
	badSigs int
}

func newEventReceiver(t *testing.T) *eventReceiver {
	rc := &eventReceiver{seen: map[string]bool{}}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(e2eEventsSecret, "whsec_"))
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if rc.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
		if r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			rc.mu.Lock()
			rc.badSigs++
			rc.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				User    struct{ ID string } `json:"user"`
				Session struct {
					ID     string `json:"id"`
					UserID string `json:"userId"`
				} `json:"session"`
				Reason string `json:"reason"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		g := gotEvent{ID: id, Timestamp: ts, Signature: r.Header.Get("webhook-signature"), Body: string(body),
			Type: ev.Type, UserID: ev.Data.User.ID + ev.Data.Session.UserID, SessionID: ev.Data.Session.ID, Reason: ev.Data.Reason}
		rc.mu.Lock()
		rc.all = append(rc.all, g)
		if !rc.seen[id] {
			rc.seen[id] = true
			rc.applied = append(rc.applied, g)
		}
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *eventReceiver) waitApplied(t *testing.T, n int) []gotEvent {
	t.Helper()
	within := eventually
	deadline := time.Now().Add(within)
	for {
		rc.mu.Lock()
		got := append([]gotEvent(nil), rc.applied...)
		bad := rc.badSigs
		rc.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d events arrived with a bad signature", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events applied within %s, want %d: %+v", len(got), within, n, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventsGatewayConfig is one gateway instance with the password provider,
// the upstream's sign-in, and events to rc.
func eventsGatewayConfig(port, upstreamPort int, redisURL, eventsURL, storage string) string {
	redisLine := ""
	if redisURL != "" {
		redisLine = "redis " + redisURL
	}
	return fmt.Sprintf(`{
	admin off
	# The instances of a realm share Caddy's storage.
	storage file_system %s
}
http://127.0.0.1:%d {
	convex_auth {
		issuer http://127.0.0.1:%d
		# Every instance is one user base, whatever its port.
		realm events-e2e
		%s
		provider password
		trust_upstream_sign_in
		events {
			url %s
			secret {env.TEST_EVENTS_SECRET}
			initial_backoff 200ms
			max_backoff 1s
			claim_idle 2s
		}
	}
	reverse_proxy 127.0.0.1:%d
}
`, storage, port, port, redisLine, eventsURL, upstreamPort)
}

// eventsUpstream signs in the user named by POST /signin?user=.
func eventsUpstream(t *testing.T) int {
	port := freePort(t)
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/signin" {
			w.Header().Set("Convex-Auth-Sign-In", fmt.Sprintf(`{"sub":%q}`, r.URL.Query().Get("user")))
		}
		_, _ = io.WriteString(w, "app page")
	})}
	go func() { _ = srv.ListenAndServe() }()
	t.Cleanup(func() { _ = srv.Close() })
	return port
}

type eventsGateway struct {
	origin string
	proc   *caddyProcess
	port   int
}

func startEventsGateway(t *testing.T, upstreamPort int, redisURL string, rc *eventReceiver, storage string) *eventsGateway {
	t.Helper()
	port := freePort(t)
	origin := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startCaddy(t, eventsGatewayConfig(port, upstreamPort, redisURL, rc.srv.URL, storage), t.TempDir(), origin+"/.well-known/jwks.json", "TEST_EVENTS_SECRET="+e2eEventsSecret)
	return &eventsGateway{origin: origin, proc: p, port: port}
}

// stop ends the process with sig and waits until its port is closed.
func (g *eventsGateway) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_ = g.proc.cmd.Process.Signal(sig)
	deadline := time.Now().Add(eventually)
	for time.Now().Before(deadline) {
		resp, err := http.Get(g.origin + "/")
		if err != nil {
			time.Sleep(200 * time.Millisecond) // let it finish exiting
			return
		}
		resp.Body.Close()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("caddy did not stop")
}

func (g *eventsGateway) signIn(t *testing.T, user string) *http.Cookie {
	t.Helper()
	resp, _ := request(t, "POST", g.origin+"/signin?user="+url.QueryEscape(user), nil)
	return sessionCookie(t, resp)
}

func (g *eventsGateway) signOut(t *testing.T, c *http.Cookie) {
	t.Helper()
	resp, _ := request(t, "POST", g.origin+"/auth/signout", withCookie(c, map[string]string{"Sec-Fetch-Site": "same-origin"}))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
}

// rounds signs each user in and out n times on the gateways in turn: 2n
// events per user, session.created then session.revoked of the same
// session.
func rounds(t *testing.T, gws []*eventsGateway, users []string, n int) {
	t.Helper()
	k := 0
	for range n {
		for _, u := range users {
			g := gws[k%len(gws)]
			k++
			g.signOut(t, g.signIn(t, u))
		}
	}
}

// checkRounds checks each user's applied events: created, revoked
// (sign-out) of that session, created, ... want of them, in that order.
func checkRounds(t *testing.T, got []gotEvent, users []string, want int) {
	t.Helper()
	byUser := map[string][]gotEvent{}
	for _, e := range got {
		byUser[e.UserID] = append(byUser[e.UserID], e)
	}
	for _, u := range users {
		evs := byUser[u]
		if len(evs) != want {
			t.Fatalf("user %s: %d events applied, want %d", u, len(evs), want)
		}
		for i, e := range evs {
			switch {
			case i%2 == 0 && e.Type != "session.created",
				i%2 == 1 && (e.Type != "session.revoked" || e.Reason != "sign-out" || e.SessionID != evs[i-1].SessionID):
				t.Fatalf("user %s: event %d is %s %s of %s: out of order", u, i, e.Type, e.Reason, e.SessionID)
			}
		}
	}
}

// Sign-up sends user.created and session.created, sign-out
// session.revoked sign-out; every request verifies with the npm
// standardwebhooks package.
func TestEventsSignUpSignOut(t *testing.T) {
	rc := newEventReceiver(t)
	redis := redistest.StartServer(t)
	g := startEventsGateway(t, eventsUpstream(t), redis.URL(), rc, t.TempDir())
	resp, _ := postForm(t, g.origin+"/auth/signin/password", url.Values{
		"intent": {"signup"}, "email": {"Ada@Example.com"}, "password": {"correct horse battery"},
	}, map[string]string{"Origin": g.origin})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password sign-up: %d", resp.StatusCode)
	}
	g.signOut(t, sessionCookie(t, resp))
	got := rc.waitApplied(t, 3)
	if got[0].Type != "user.created" || !strings.Contains(got[0].Body, `"email":"ada@example.com"`) ||
		got[1].Type != "session.created" || got[1].UserID != got[0].UserID ||
		got[2].Type != "session.revoked" || got[2].Reason != "sign-out" || got[2].SessionID != got[1].SessionID {
		t.Fatalf("events %+v", got)
	}
	verifyStandardWebhooks(t, got)
}

// A receiver down for 30 s gets every event afterwards, in order per user,
// each webhook-id at least once and applied once.
func TestEventsReceiverDown30s(t *testing.T) {
	rc := newEventReceiver(t)
	rc.down.Store(true)
	redis := redistest.StartServer(t)
	g := startEventsGateway(t, eventsUpstream(t), redis.URL(), rc, t.TempDir())
	users := []string{"user_a", "user_b", "user_c"}
	downSince := time.Now()
	rounds(t, []*eventsGateway{g}, users, 3)
	time.Sleep(30*time.Second - time.Since(downSince))
	rc.down.Store(false)
	got := rc.waitApplied(t, 18)
	checkRounds(t, got, users, 6)
	time.Sleep(500 * time.Millisecond)
	rc.mu.Lock()
	distinct, answered := len(rc.applied), len(rc.all)
	rc.mu.Unlock()
	if distinct != 18 {
		t.Fatalf("%d distinct events, want 18", distinct)
	}
	t.Logf("%d events acknowledged for 18 distinct webhook-ids", answered)
}

// With Redis, a Caddy restart in the middle of a backlog loses nothing, and
// a second instance takes over the pending events of a killed one.
func TestEventsRestartAndTakeover(t *testing.T) {
	rc := newEventReceiver(t)
	rc.down.Store(true)
	redis := redistest.StartServer(t)
	upstream := eventsUpstream(t)
	users := []string{"user_a", "user_b"}

	storage := t.TempDir()
	a := startEventsGateway(t, upstream, redis.URL(), rc, storage)
	rounds(t, []*eventsGateway{a}, users, 3)
	time.Sleep(time.Second) // a holds the backlog, failing
	a.stop(t, syscall.SIGTERM)
	a2 := startEventsGateway(t, upstream, redis.URL(), rc, storage)
	rc.down.Store(false)
	got := rc.waitApplied(t, 12)
	checkRounds(t, got, users, 6)

	// Two instances; the one holding the backlog is killed.
	rc.down.Store(true)
	b := startEventsGateway(t, upstream, redis.URL(), rc, storage)
	more := []string{"user_c", "user_d"}
	rounds(t, []*eventsGateway{a2, b}, more, 3)
	time.Sleep(time.Second)
	a2.stop(t, syscall.SIGKILL)
	rc.down.Store(false)
	got = rc.waitApplied(t, 24)
	checkRounds(t, got, append(users, more...), 6)
}

// verifyStandardWebhooks runs conformance/verify-webhooks.mjs (npm
// standardwebhooks) over the requests.
func verifyStandardWebhooks(t *testing.T, got []gotEvent) {
	t.Helper()
	reqs := make([]webhooktest.Request, len(got))
	for i, g := range got {
		reqs[i] = webhooktest.Request{ID: g.ID, Timestamp: g.Timestamp, Signature: g.Signature, Body: g.Body}
	}
	res := webhooktest.Verify(t, e2eEventsSecret, reqs)
	if res.Verified != len(got) || res.TamperedRejected != len(got) {
		t.Fatalf("standardwebhooks verified %d of %d, rejected %d tampered copies; failures %v", res.Verified, len(got), res.TamperedRejected, res.Failures)
	}
}
