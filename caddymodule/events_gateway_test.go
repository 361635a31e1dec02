package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// eventSink records the events POSTed to it, deduped on webhook-id.
type eventSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string]bool
	got  []string // "type reason user"
}

func newEventSink(t *testing.T) *eventSink {
	s := &eventSink{seen: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string `json:"type"`
			Data struct {
				User    struct{ ID string } `json:"user"`
				Session struct {
					UserID string `json:"userId"`
				} `json:"session"`
				Reason string `json:"reason"`
			} `json:"data"`
		}
		if r.Header.Get("webhook-signature") == "" || json.Unmarshal(body, &ev) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		if id := r.Header.Get("webhook-id"); !s.seen[id] {
			s.seen[id] = true
			s.got = append(s.got, strings.Join(strings.Fields(ev.Type+" "+ev.Data.Reason+" "+ev.Data.User.ID+ev.Data.Session.UserID), " "))
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// wait waits until the sink holds want's events: each user's in want's
// order (events are ordered per user, not across users), and no others.
func (s *eventSink) wait(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(testerTimeout)
	for {
		s.mu.Lock()
		got := append([]string(nil), s.got...)
		s.mu.Unlock()
		if sameOrderPerUser(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events:\n%s\nwant, in this order for each user:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sameOrderPerUser reports whether got and want hold the same events
// ("type [reason] user") with each user's in the same order.
func sameOrderPerUser(got, want []string) bool {
	perUser := func(events []string) map[string]string {
		m := map[string]string{}
		for _, e := range events {
			user := e[strings.LastIndexByte(e, ' ')+1:]
			m[user] += e + "\n"
		}
		return m
	}
	g, w := perUser(got), perUser(want)
	if len(got) != len(want) || len(g) != len(w) {
		return false
	}
	for user, seq := range w {
		if g[user] != seq {
			return false
		}
	}
	return true
}

func poolSize() int {
	n := 0
	deliveries.Range(func(any, any) bool { n++; return true })
	return n
}

// Sign-in, a sign-in over a session and sign-out send their events; a
// reload keeps one delivery loop, and a config without events stops it.
func TestGatewayEvents(t *testing.T) {
	redis := redistest.StartServer(t)
	sink := newEventSink(t)
	t.Setenv("TEST_EVENTS_SECRET", testEventsSecret)
	extra := "events {\nurl " + sink.srv.URL + "\nsecret {env.TEST_EVENTS_SECRET}\nmax_backoff 1s\n}"
	g := startGateway(t, redis.URL(), extra)
	delivered := scrapeMetrics(t)["caddy_convex_auth_events_delivered_total"]
	a := g.signIn("user-1", nil)
	g.signIn("user-1", cookieHeader(a)) // replaces a
	b := g.signIn("user-2", nil)
	resp, _ := g.do("POST", "/auth/signout", map[string]string{"Cookie": b.Name + "=" + b.Value, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	sink.wait(t,
		"session.created user-1",
		"session.revoked sign-out user-1",
		"session.created user-1",
		"session.created user-2",
		"session.revoked sign-out user-2",
	)
	if n := poolSize(); n != 1 {
		t.Fatalf("%d delivery loops, want 1", n)
	}
	// The sink has the events; the loop counts each once it has read the
	// sink's answer, a moment later.
	for deadline := time.Now().Add(testerTimeout); ; time.Sleep(20 * time.Millisecond) {
		d := scrapeMetrics(t)["caddy_convex_auth_events_delivered_total"] - delivered
		if d >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events_delivered_total went up by %v, want at least 5", d)
		}
	}
	// Reload with the same config: the loop is kept, not doubled.
	g2 := startGateway(t, redis.URL(), extra)
	if n := poolSize(); n != 1 {
		t.Fatalf("after a reload: %d delivery loops, want 1", n)
	}
	g2.signIn("user-3", nil)
	sink.wait(t,
		"session.created user-1",
		"session.revoked sign-out user-1",
		"session.created user-1",
		"session.created user-2",
		"session.revoked sign-out user-2",
		"session.created user-3",
	)
	startGateway(t, redis.URL(), "")
	if n := poolSize(); n != 0 {
		t.Fatalf("events removed from the config, %d delivery loops still run", n)
	}
}

// An event the app keeps refusing is dead-lettered after max_age: counted
// in the metric and listed by DeadLettersHandler for the admin API.
func TestGatewayEventsDeadLetter(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(refusing.Close)
	t.Setenv("TEST_EVENTS_SECRET", testEventsSecret)
	g := startGateway(t, "", "events {\nurl "+refusing.URL+"\nsecret {env.TEST_EVENTS_SECRET}\ninitial_backoff 100ms\nmax_backoff 200ms\nmax_age 1s\n}")
	before := scrapeMetrics(t)["caddy_convex_auth_events_dead_letters_total"]
	g.signIn("user-dead", nil)
	deadline := time.Now().Add(testerTimeout)
	for scrapeMetrics(t)["caddy_convex_auth_events_dead_letters_total"] < before+1 {
		if time.Now().After(deadline) {
			t.Fatal("the refused event was not counted as a dead letter")
		}
		time.Sleep(100 * time.Millisecond)
	}
	h, ok := DeadLettersHandler(gatewayOrigin + " convex")
	if !ok {
		t.Fatal("no dead-letter listing for the realm")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/convex-auth/events/dead", nil))
	var got struct {
		Dead []struct {
			UserID    string          `json:"userId"`
			Body      json.RawMessage `json:"body"`
			Attempts  int             `json:"attempts"`
			LastError string          `json:"lastError"`
		} `json:"dead"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK || len(got.Dead) != 1 {
		t.Fatalf("dead letters: %d %s (%v)", rec.Code, rec.Body, err)
	}
	d := got.Dead[0]
	if d.UserID != "user-dead" || !strings.Contains(string(d.Body), `"session.created"`) || d.Attempts < 2 || !strings.Contains(d.LastError, "400") {
		t.Fatalf("dead letter %+v", d)
	}
	if _, ok := DeadLettersHandler("another realm"); ok {
		t.Fatal("a realm without events has a dead-letter listing")
	}
	m := scrapeMetrics(t)
	if dead, pending := m[backlogSeries("dead")], m[backlogSeries("pending")]; dead != 1 || pending != 0 {
		t.Fatalf("events_backlog: dead %v, pending %v; want 1 and 0", dead, pending)
	}
}

func backlogSeries(state string) string {
	return `caddy_convex_auth_events_backlog{realm="` + gatewayOrigin + ` convex",state="` + state + `"}`
}

// The backlog gauge follows the Redis queue: an event the app refuses is
// pending until the app takes it.
func TestGatewayEventsBacklogGauge(t *testing.T) {
	redis := redistest.StartServer(t)
	var refuse atomic.Bool
	refuse.Store(true)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(app.Close)
	t.Setenv("TEST_EVENTS_SECRET", testEventsSecret)
	g := startGateway(t, redis.URL(), "events {\nurl "+app.URL+"\nsecret {env.TEST_EVENTS_SECRET}\ninitial_backoff 100ms\nmax_backoff 200ms\n}")
	g.signIn("user-backlog", nil)
	waitGauge := func(state string, want float64) {
		t.Helper()
		deadline := time.Now().Add(testerTimeout)
		for {
			got, ok := scrapeMetrics(t)[backlogSeries(state)]
			if ok && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("events_backlog %s = %v (present %v); want %v", state, got, ok, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitGauge("pending", 1)
	waitGauge("dead", 0)
	refuse.Store(false)
	waitGauge("pending", 0)
}
