package caddymodule

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// The gateway's Prometheus metrics, served by Caddy's /metrics (the admin
// endpoint, or the metrics handler). Every label comes from a small fixed
// set: outcomes, token kinds and store operations are constants here, and
// providers are the configured provider names plus "upstream".
const (
	metricsNamespace = "caddy"
	metricsSubsystem = "convex_auth"
)

// Store operations (store_duration_seconds and store_errors_total{operation}).
const (
	storeOpLookup     = "lookup"
	storeOpCreate     = "create"
	storeOpDelete     = "delete"
	storeOpDeleteUser = "delete_user"
)

var storeOperations = []string{storeOpLookup, storeOpCreate, storeOpDelete, storeOpDeleteUser}

// Results of a sign-in (sign_ins_total{provider,result}).
const (
	signInSuccess = "success"
	signInFailure = "failure"
)

// storeDurationBuckets span a local Redis round trip (~100 µs) to the
// per-call timeout (httprule.StoreCallTimeout, 2 s).
var storeDurationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// gatewayMetrics are created once per process and registered into each
// config's registry, so counters keep counting across reloads.
var gatewayMetrics struct {
	once          sync.Once
	requests      *prometheus.CounterVec
	signIns       *prometheus.CounterVec
	tokens        *prometheus.CounterVec
	storeDuration *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec

	// Resolved children of the fixed label sets, for the hot path.
	byOutcome      map[edge.Outcome]prometheus.Counter
	tokensMinted   prometheus.Counter
	tokensReused   prometheus.Counter
	storeObservers map[string]prometheus.Observer
	storeErrCount  map[string]prometheus.Counter
}

func initGatewayMetrics() {
	m := &gatewayMetrics
	m.once.Do(func() {
		opts := func(name, help string) prometheus.Opts {
			return prometheus.Opts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}
		}
		m.requests = prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_total",
			"Requests on the gateway's request path, by outcome: authenticated, anonymous, redirected, rejected, store_error, token_error.")), []string{"outcome"})
		m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts(opts("sign_ins_total",
			"Completed sign-in attempts, by provider (configured name, or upstream) and result (success, failure).")), []string{"provider", "result"})
		m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts(opts("tokens_total",
			"Tokens handed out, by kind: minted (signed now) or reused (minted earlier for the same session, as token_reuse or token_reuse_margin allow).")), []string{"kind"})
		m.storeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "store_duration_seconds",
			Help:    "Latency of session store calls made by the gateway, by operation.",
			Buckets: storeDurationBuckets,
		}, []string{"operation"})
		m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts(opts("store_errors_total",
			"Session store calls that failed (the store was unreachable or erred; not-found is no error), by operation.")), []string{"operation"})

		m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts(opts("rate_limited_total",
			"Sign-in requests refused by a rate limit (429), by limit: sign_up, sign_in, email_send, oauth_start, global_sign_up, global_email_send, global_sign_in, second_factor.")), []string{"limit"})

		m.byOutcome = make(map[edge.Outcome]prometheus.Counter, len(edge.Outcomes))
		for _, o := range edge.Outcomes {
			m.byOutcome[o] = m.requests.WithLabelValues(string(o))
		}
		m.tokensMinted = m.tokens.WithLabelValues("minted")
		m.tokensReused = m.tokens.WithLabelValues("reused")
		m.storeObservers = make(map[string]prometheus.Observer, len(storeOperations))
		m.storeErrCount = make(map[string]prometheus.Counter, len(storeOperations))
		for _, op := range storeOperations {
			m.storeObservers[op] = m.storeDuration.WithLabelValues(op)
			m.storeErrCount[op] = m.storeErrors.WithLabelValues(op)
		}
	})
}

// registerMetrics adds the gateway's collectors to the config's registry.
// Every handler of a config, and every config after a reload, registers the
// same collectors: a registry that has them already is fine.
func registerMetrics(ctx caddy.Context, providers []string) error {
	initGatewayMetrics()
	m := &gatewayMetrics
	// Show every provider's counters from the start, at zero.
	for _, p := range append(providers, edge.UpstreamProvider) {
		m.signIns.WithLabelValues(p, signInSuccess)
		m.signIns.WithLabelValues(p, signInFailure)
	}
	for _, l := range signin.LimitNames {
		m.rateLimited.WithLabelValues(l)
	}
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range append([]prometheus.Collector{m.requests, m.signIns, m.tokens, m.storeDuration, m.storeErrors, m.rateLimited}, authzCollectors()...) {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) && already.ExistingCollector == c {
				continue
			}
			return err
		}
	}
	return nil
}

// gatewayMetricsHooks counts what the request path reports (edge.Metrics).
type gatewayMetricsHooks struct{}

func (gatewayMetricsHooks) Request(outcome edge.Outcome) {
	if c := gatewayMetrics.byOutcome[outcome]; c != nil {
		c.Inc()
	}
}

func (gatewayMetricsHooks) Token(minted bool) {
	c := gatewayMetrics.tokensReused
	if minted {
		c = gatewayMetrics.tokensMinted
	}
	if c != nil {
		c.Inc()
	}
}

func (gatewayMetricsHooks) SignIn(provider string, ok bool) {
	result := signInFailure
	if ok {
		result = signInSuccess
	}
	countSignIn(provider, result)
}

// observeStore records a store call that started at start and returned
// err: its latency, and an error unless it succeeded or found nothing.
func observeStore(op string, start time.Time, err error) {
	m := &gatewayMetrics
	if o := m.storeObservers[op]; o != nil {
		o.Observe(time.Since(start).Seconds())
	}
	if err != nil && !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrInvalidSession) && !errors.Is(err, session.ErrInvalidUser) {
		if c := m.storeErrCount[op]; c != nil {
			c.Inc()
		}
	}
}

// meteredStore times every session store call the gateway makes and counts
// its errors, so call sites need not.
type meteredStore struct {
	session.Store
}

func (m meteredStore) Lookup(ctx context.Context, token string) (*session.Session, error) {
	start := time.Now()
	s, err := m.Store.Lookup(ctx, token)
	observeStore(storeOpLookup, start, err)
	return s, err
}

func (m meteredStore) Create(ctx context.Context, s session.NewSession) (string, *session.Session, error) {
	start := time.Now()
	token, sess, err := m.Store.Create(ctx, s)
	observeStore(storeOpCreate, start, err)
	return token, sess, err
}

func (m meteredStore) Delete(ctx context.Context, token string) error {
	start := time.Now()
	err := m.Store.Delete(ctx, token)
	observeStore(storeOpDelete, start, err)
	return err
}

func (m meteredStore) DeleteUser(ctx context.Context, userID, exceptSessionID string) (int, error) {
	start := time.Now()
	n, err := m.Store.DeleteUser(ctx, userID, exceptSessionID)
	observeStore(storeOpDeleteUser, start, err)
	return n, err
}

// Limited counts a request refused by the sign-in rate limit named limit.
func (gatewayMetricsHooks) Limited(limit string) {
	if v := gatewayMetrics.rateLimited; v != nil {
		v.WithLabelValues(limit).Inc()
	}
}

// countSignIn counts a completed sign-in attempt.
func countSignIn(provider, result string) {
	if v := gatewayMetrics.signIns; v != nil {
		v.WithLabelValues(provider, result).Inc()
	}
}

// providerNames are the loaded providers' names: the provider label's
// values.
func (h *Handler) providerNames() []string {
	names := make([]string, 0, len(h.loadedProviders))
	for _, p := range h.loadedProviders {
		names = append(names, providerName(p))
	}
	return names
}
