package edge

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// pathHealth answers load balancers.
const pathHealth = "/auth/health"

// healthProbeTTL is how long one store probe answers every health check:
// the endpoint is not rate-limited, so requests, however many, cost the
// store at most one Ping per interval.
const healthProbeTTL = time.Second

// Problems /auth/health reports, in words only.
const (
	problemStore      = "session store unreachable"
	problemSigningKey = "no signing key loaded"
)

// healthProbe pings the store at most once per healthProbeTTL; concurrent
// checks share the ping in flight.
type healthProbe struct {
	ping   func(context.Context) error
	now    func() time.Time
	flight singleflight.Group

	mu     sync.Mutex
	done   bool // a probe has finished
	at     time.Time
	result error
}

// cached is the last probe's result while it is fresh.
func (p *healthProbe) cached() (err error, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		return nil, false
	}
	if age := p.now().Sub(p.at); age < 0 || age >= healthProbeTTL {
		return nil, false
	}
	return p.result, true
}

// storeErr is nil when the store answered a recent or a new ping. A
// caller that gives up (ctx) leaves the ping running for the others.
func (p *healthProbe) storeErr(ctx context.Context) error {
	if err, ok := p.cached(); ok {
		return err
	}
	ch := p.flight.DoChan("ping", func() (any, error) {
		// A probe that ended between cached() and here answers for us.
		if err, ok := p.cached(); ok {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(context.Background(), httprule.StoreCallTimeout)
		defer cancel()
		err := p.ping(pctx)
		p.mu.Lock()
		p.done, p.at, p.result = true, p.now(), err
		p.mu.Unlock()
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serveHealth answers 200 {"status":"ok"} when the store answers and a
// signing key is loaded, else 503 with the problems in words. It tells
// nothing else: no counts, versions or addresses.
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "check health with GET or HEAD")
		return
	}
	var problems []string
	if g.cfg.Issuer.SigningKey() == nil {
		problems = append(problems, problemSigningKey)
	}
	if err := g.health.storeErr(r.Context()); err != nil {
		problems = append(problems, problemStore)
	}
	w.Header().Set("Cache-Control", "no-store")
	status, body := http.StatusOK, any(struct {
		Status string `json:"status"`
	}{"ok"})
	if len(problems) > 0 {
		status, body = http.StatusServiceUnavailable, struct {
			Status   string   `json:"status"`
			Problems []string `json:"problems"`
		}{"unavailable", problems}
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, body)
}
