package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// The gateway's Prometheus metrics, served by Caddy's /metrics (the admin
// endpoint, or the metrics handler). Every label comes from a small fixed
// set: outcomes, token kinds and store operations are constants here, and
// providers are the configured provider names plus "upstream".
const (
	metricsNamespace = "caddy"
	metricsSubsystem = "convex_auth"
)

// Outcomes of the request path (requests_total{outcome}).
const (
	outcomeAuthenticated = "authenticated" // session found, token injected, forwarded
	outcomeAnonymous     = "anonymous"     // no session on an open path, forwarded without a token
	outcomeRedirected    = "redirected"    // no session on a protected path, browser sent to sign in
	outcomeRejected      = "rejected"      // no session on a protected path, 401
	outcomeStoreError    = "store_error"   // the store did not answer: 503, or forwarded without a token
	outcomeTokenError    = "token_error"   // a token could not be minted
)

var requestOutcomes = []string{outcomeAuthenticated, outcomeAnonymous, outcomeRedirected, outcomeRejected, outcomeStoreError, outcomeTokenError}

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

// upstreamProvider labels sign-ins asserted by the app (Convex-Auth-Sign-In).
const upstreamProvider = "upstream"

// storeDurationBuckets span a local Redis round trip (~100 µs) to the
// per-call timeout (storeCallTimeout, 2 s).
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

	// Resolved children of the fixed label sets, for the hot path.
	byOutcome      map[string]prometheus.Counter
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
			"Tokens handed out, by kind: minted (signed now) or reused (minted moments ago for the same session).")), []string{"kind"})
		m.storeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "store_duration_seconds",
			Help:    "Latency of session store calls made by the gateway, by operation.",
			Buckets: storeDurationBuckets,
		}, []string{"operation"})
		m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts(opts("store_errors_total",
			"Session store calls that failed (the store was unreachable or erred; not-found is no error), by operation.")), []string{"operation"})

		m.byOutcome = make(map[string]prometheus.Counter, len(requestOutcomes))
		for _, o := range requestOutcomes {
			m.byOutcome[o] = m.requests.WithLabelValues(o)
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
	for _, p := range append(providers, upstreamProvider) {
		m.signIns.WithLabelValues(p, signInSuccess)
		m.signIns.WithLabelValues(p, signInFailure)
	}
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.signIns, m.tokens, m.storeDuration, m.storeErrors} {
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

// countRequest counts one request of the request path by its outcome.
func countRequest(outcome string) {
	if c := gatewayMetrics.byOutcome[outcome]; c != nil {
		c.Inc()
	}
}

func countTokenMinted() {
	if c := gatewayMetrics.tokensMinted; c != nil {
		c.Inc()
	}
}

func countTokenReused() {
	if c := gatewayMetrics.tokensReused; c != nil {
		c.Inc()
	}
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

// countSignIn counts a completed sign-in attempt.
func countSignIn(provider, result string) {
	if v := gatewayMetrics.signIns; v != nil {
		v.WithLabelValues(provider, result).Inc()
	}
}

// signInAttempt follows one request through the sign-in service: the Host
// marks it when a session starts, and handleSignInCounted counts it.
type signInAttempt struct {
	started bool
}

type signInAttemptKey struct{}

// markSignInStarted records, for handleSignInCounted, that the request
// signed its user in.
func markSignInStarted(r *http.Request) {
	if a, ok := r.Context().Value(signInAttemptKey{}).(*signInAttempt); ok {
		a.started = true
	}
}

// handleSignInCounted runs the sign-in service and counts the requests that
// finish a sign-in (an OAuth or email callback, a password form post): a
// success when a session was started, else a failure. Only configured
// provider names become labels.
func (h *Handler) handleSignInCounted(w http.ResponseWriter, r *http.Request) bool {
	provider := h.signInCompletionProvider(r)
	if provider == "" {
		return h.signIn.Handle(w, r)
	}
	a := new(signInAttempt)
	handled := h.signIn.Handle(w, r.WithContext(context.WithValue(r.Context(), signInAttemptKey{}, a)))
	if handled {
		result := signInFailure
		if a.started {
			result = signInSuccess
		}
		countSignIn(provider, result)
	}
	return handled
}

// signInCompletionProvider returns the configured provider whose sign-in
// r would complete, or "" when r completes none: GET
// /auth/callback/<oauth provider>, POST /auth/callback/<email provider>,
// POST /auth/signin/<password provider>.
func (h *Handler) signInCompletionProvider(r *http.Request) string {
	var name string
	var ok bool
	if name, ok = strings.CutPrefix(r.URL.Path, "/auth/callback/"); !ok {
		if name, ok = strings.CutPrefix(r.URL.Path, "/auth/signin/"); !ok || r.Method != http.MethodPost {
			return ""
		}
	}
	for _, p := range h.Providers {
		if p.name() != name {
			continue
		}
		switch p.Type {
		case providerPassword:
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/auth/signin/") {
				return name
			}
		case providerEmail:
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/auth/callback/") {
				return name
			}
		default:
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/auth/callback/") {
				return name
			}
		}
	}
	return ""
}

// providerNames are the configured providers' names: the provider label's values.
func (h *Handler) providerNames() []string {
	names := make([]string, 0, len(h.Providers))
	for _, p := range h.Providers {
		names = append(names, p.name())
	}
	return names
}
