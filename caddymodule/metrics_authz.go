package caddymodule

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convex-auth/caddy-convex-auth/authz"
	"github.com/convex-auth/caddy-convex-auth/edge"
)

// Authorization metrics: protected_requests_total{path,outcome}, whose
// paths are the configured protect patterns, and
// claims_queries_total{outcome}.
var authzMetrics struct {
	once      sync.Once
	protected *prometheus.CounterVec
	queries   *prometheus.CounterVec
	// byPath holds the resolved counters of the configured paths, so the
	// request path looks them up without allocating; replaced whole when
	// a config adds paths.
	mu      sync.Mutex
	byPath  atomic.Pointer[map[protectedKey]prometheus.Counter]
	byQuery map[string]prometheus.Counter
}

type protectedKey struct {
	path    string
	outcome edge.ProtectedOutcome
}

var claimsQueryOutcomes = []string{authz.QueryOK, authz.QueryNull, authz.QueryFailed, authz.QueryTransport, authz.QueryRefused}

func initAuthzMetrics() {
	m := &authzMetrics
	m.once.Do(func() {
		m.protected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "protected_requests_total",
			Help: "Requests to protected paths, by the protect path pattern that decided them and outcome: admitted, signed_out, forbidden, claims_unavailable, reauthenticate, second_factor, store_error."},
			[]string{"path", "outcome"})
		m.queries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "claims_queries_total",
			Help: "Calls of the app's claims query, by outcome: ok, null, failed (the function threw), transport (Convex not reached, or another answer), refused (a value that is not claims, e.g. a reserved name)."},
			[]string{"outcome"})
		m.byQuery = make(map[string]prometheus.Counter, len(claimsQueryOutcomes))
		for _, o := range claimsQueryOutcomes {
			m.byQuery[o] = m.queries.WithLabelValues(o)
		}
		empty := map[protectedKey]prometheus.Counter{}
		m.byPath.Store(&empty)
	})
}

// authzCollectors are registered with the gateway's other metrics.
func authzCollectors() []prometheus.Collector {
	initAuthzMetrics()
	return []prometheus.Collector{authzMetrics.protected, authzMetrics.queries}
}

// registerProtectedMetrics shows every outcome of paths from the start.
func registerProtectedMetrics(paths []string) {
	initAuthzMetrics()
	m := &authzMetrics
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.byPath.Load()
	next := make(map[protectedKey]prometheus.Counter, len(old)+len(paths)*len(edge.ProtectedOutcomes))
	for k, v := range old {
		next[k] = v
	}
	for _, p := range paths {
		for _, o := range edge.ProtectedOutcomes {
			k := protectedKey{p, o}
			if next[k] == nil {
				next[k] = m.protected.WithLabelValues(p, string(o))
			}
		}
	}
	m.byPath.Store(&next)
}

// Protected counts a protected request (edge.ProtectedMetrics).
func (gatewayMetricsHooks) Protected(path string, outcome edge.ProtectedOutcome) {
	if p := authzMetrics.byPath.Load(); p != nil {
		if c := (*p)[protectedKey{path, outcome}]; c != nil {
			c.Inc()
		}
	}
}

// ClaimsQuery counts a claims query call (edge.ClaimsMetrics).
func (gatewayMetricsHooks) ClaimsQuery(outcome string) {
	if c := authzMetrics.byQuery[outcome]; c != nil {
		c.Inc()
	}
}
