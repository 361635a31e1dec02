package edge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// pingCounter counts the store's pings and fails them while down is set.
type pingCounter struct {
	session.Store
	pings atomic.Int64
	down  atomic.Bool
}

func (p *pingCounter) Ping(ctx context.Context) error {
	p.pings.Add(1)
	if p.down.Load() {
		return errors.New("session: ping: connection refused")
	}
	return p.Store.Ping(ctx)
}

func health(t *testing.T, g *Gateway, method string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, "http://app.example.com"+pathHealth, nil)
	if err := g.ServeHTTP(w, r, nextFunc(func(http.ResponseWriter, *http.Request) error {
		t.Fatal("/auth/health went to the next handler")
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	return w
}

// newPingGateway is a gateway on an in-process store whose pings are
// counted, with a clock that moves only when told.
func newPingGateway(t *testing.T) (*Gateway, *pingCounter, *testclock.Clock) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	mem := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = mem.Close() })
	st := &pingCounter{Store: mem}
	return newTestGatewayFor(t, issuer.Config{Issuer: testIssuer, Now: clock.Now}, issuer.EdDSA, st), st, clock
}

func TestHealthAnswersOkOrWhatIsWrong(t *testing.T) {
	g, st, clock := newPingGateway(t)

	w := health(t, g, http.MethodGet)
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("healthy: %d %s; want 200 {\"status\":\"ok\"}", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q; want no-store", cc)
	}
	if w := health(t, g, http.MethodHead); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d with %d body bytes; want 200 and no body", w.Code, w.Body.Len())
	}

	st.down.Store(true)
	clock.Advance(healthProbeTTL)
	w = health(t, g, http.MethodGet)
	want := `{"status":"unavailable","problems":["session store unreachable"]}`
	if w.Code != http.StatusServiceUnavailable || strings.TrimSpace(w.Body.String()) != want {
		t.Fatalf("store down: %d %s; want 503 %s", w.Code, w.Body, want)
	}
	if strings.Contains(w.Body.String(), "refused") {
		t.Errorf("the answer quotes the store's error: %s", w.Body)
	}
	if w := health(t, g, http.MethodHead); w.Code != http.StatusServiceUnavailable {
		t.Errorf("HEAD with the store down: %d; want 503", w.Code)
	}

	st.down.Store(false)
	clock.Advance(healthProbeTTL)
	if w := health(t, g, http.MethodGet); w.Code != http.StatusOK {
		t.Errorf("store back: %d %s; want 200", w.Code, w.Body)
	}

	w = health(t, g, http.MethodPost)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q; want 405, GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
}

// Health checks are not rate-limited: however many arrive, the store sees
// one ping per healthProbeTTL, shared by the checks that wait for it.
func TestHealthPingsTheStoreOncePerInterval(t *testing.T) {
	g, st, clock := newPingGateway(t)

	burst := func() {
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if w := health(t, g, http.MethodGet); w.Code != http.StatusOK {
					t.Errorf("health: %d", w.Code)
				}
			})
		}
		wg.Wait()
	}
	burst()
	if n := st.pings.Load(); n != 1 {
		t.Fatalf("50 concurrent checks pinged the store %d times; want 1", n)
	}
	clock.Advance(healthProbeTTL - time.Millisecond)
	burst()
	if n := st.pings.Load(); n != 1 {
		t.Fatalf("checks within the interval pinged %d times in all; want 1", n)
	}
	clock.Advance(time.Millisecond)
	burst()
	if n := st.pings.Load(); n != 2 {
		t.Fatalf("checks after the interval pinged %d times in all; want 2", n)
	}
}

// Against a real redis-server stopped and started again.
func TestHealthFollowsRedis(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	srv := redistest.StartServer(t)
	st, err := session.NewRedisStore(session.RedisConfig{URL: srv.URL()}, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	g := newTestGatewayFor(t, issuer.Config{Issuer: testIssuer, Now: clock.Now}, issuer.EdDSA, st)

	if w := health(t, g, http.MethodGet); w.Code != http.StatusOK {
		t.Fatalf("redis up: %d %s", w.Code, w.Body)
	}
	srv.Stop()
	clock.Advance(healthProbeTTL)
	if w := health(t, g, http.MethodGet); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), problemStore) {
		t.Fatalf("redis stopped: %d %s; want 503 naming the store", w.Code, w.Body)
	}
	srv.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		clock.Advance(healthProbeTTL)
		w := health(t, g, http.MethodGet)
		if w.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis restarted 30s ago, health still %d %s", w.Code, w.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
