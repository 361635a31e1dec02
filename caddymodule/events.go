package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/events"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// EventsConfig sends signed user and session events to the app
// (docs/events.md). Caddyfile, inside convex_auth:
//
//	events {
//	    url             https://<deployment>.convex.site/gateway-events
//	    secret          {env.CONVEX_AUTH_EVENTS_SECRET}
//	    initial_backoff 1s
//	    max_backoff     10m
//	    max_age         24h
//	    claim_idle      30s
//	    max_len         100000
//	}
type EventsConfig struct {
	// URL receives the events (POST). Required; an absolute http(s) URL.
	URL string `json:"url,omitempty"`
	// Secret signs them: a Standard Webhooks secret, "whsec_" and base64
	// of at least 24 bytes; may use {env.*}. Required.
	Secret string `json:"secret,omitempty"`
	// InitialBackoff is the wait before the first retry of an event; each
	// retry doubles it. Default: 1s (events.DefaultInitialBackoff).
	InitialBackoff caddy.Duration `json:"initial_backoff,omitempty"`
	// MaxBackoff caps the wait between retries. Default: 10m
	// (events.DefaultMaxBackoff).
	MaxBackoff caddy.Duration `json:"max_backoff,omitempty"`
	// MaxAge is how long an event is retried before it is dead-lettered.
	// Default: 24h (events.DefaultMaxAge).
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// ClaimIdle is how long events held by an instance that stopped
	// renewing them (it died) wait before another instance takes them
	// over; with redis only. Default: 30s (events.DefaultClaimIdle).
	ClaimIdle caddy.Duration `json:"claim_idle,omitempty"`
	// MaxLen bounds the Redis stream, so the backlog: past it the oldest
	// undelivered events are dropped. Default: 100000
	// (events.DefaultMaxLen).
	MaxLen int `json:"max_len,omitempty"`
}

func (c *EventsConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("events takes a block: events { url <url> secret <whsec_...> }")
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("events %s is set more than once: keep one", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "url":
			err = oneArg(d, &c.URL)
		case "secret":
			err = oneArg(d, &c.Secret)
		case "initial_backoff":
			err = durationArg(d, &c.InitialBackoff)
		case "max_backoff":
			err = durationArg(d, &c.MaxBackoff)
		case "max_age":
			err = durationArg(d, &c.MaxAge)
		case "claim_idle":
			err = durationArg(d, &c.ClaimIdle)
		case "max_len":
			err = intArg(d, &c.MaxLen)
		default:
			return d.Errf("unknown events option %q: use url, secret, initial_backoff, max_backoff, max_age, claim_idle or max_len", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// check validates the options, each error naming its option.
func (c *EventsConfig) check() error {
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fmt.Errorf("convex_auth: events url %q is not an absolute http(s) URL: use e.g. https://<deployment>.convex.site/gateway-events", c.URL)
	}
	if _, err := c.secret(); err != nil {
		return err
	}
	for _, o := range []struct {
		name string
		v    caddy.Duration
	}{{"initial_backoff", c.InitialBackoff}, {"max_backoff", c.MaxBackoff}, {"max_age", c.MaxAge}, {"claim_idle", c.ClaimIdle}} {
		if o.v < 0 {
			return fmt.Errorf("convex_auth: events %s must be a positive duration", o.name)
		}
	}
	if c.InitialBackoff > 0 && c.MaxBackoff > 0 && c.InitialBackoff > c.MaxBackoff {
		return fmt.Errorf("convex_auth: events initial_backoff %s is longer than max_backoff %s", time.Duration(c.InitialBackoff), time.Duration(c.MaxBackoff))
	}
	if c.ClaimIdle > 0 && time.Duration(c.ClaimIdle) < time.Second {
		return errors.New("convex_auth: events claim_idle must be at least 1s: instances renew what they hold every third of it")
	}
	if c.MaxLen < 0 {
		return errors.New("convex_auth: events max_len must be positive")
	}
	return nil
}

func (c *EventsConfig) secret() (events.Secret, error) {
	raw := caddy.NewReplacer().ReplaceKnown(c.Secret, "")
	if raw == "" {
		return events.Secret{}, errors.New("convex_auth: events secret is empty (after replacing placeholders): set it, e.g. secret {env.CONVEX_AUTH_EVENTS_SECRET}, to a whsec_ secret")
	}
	s, err := events.ParseSecret(raw)
	if err != nil {
		return events.Secret{}, fmt.Errorf("convex_auth: events secret: %w", err)
	}
	return s, nil
}

// deliveries holds one queue and delivery loop per realm, store and events
// config, shared by the handlers that have them and kept across a reload
// that keeps them (so an in-memory backlog survives it).
var deliveries = caddy.NewUsagePool()

type pooledDelivery struct {
	realm     string
	queue     events.Queue
	deliverer *events.Deliverer
	client    redis.UniversalClient // nil with the in-memory queue
}

func (p *pooledDelivery) Destruct() error {
	p.deliverer.Stop()
	unregisterDeadLetters(p)
	if p.client != nil {
		return p.client.Close()
	}
	return nil
}

// provisionEvents starts (or joins) the realm's delivery and wraps the store
// so that its changes queue events.
func (h *Handler) provisionEvents(ctx caddy.Context, st session.Store) (session.Store, error) {
	c := h.Events
	backend, ok := st.(events.Backend)
	if !ok {
		return nil, fmt.Errorf("convex_auth: events: the session store %T cannot send events", st)
	}
	secret, err := c.secret()
	if err != nil {
		return nil, err
	}
	registerEventMetrics(ctx)
	cfgJSON, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	key := h.storeKey + "\x00events\x00" + string(cfgJSON)
	logger := h.logger.Named("events")
	val, _, err := deliveries.LoadOrNew(key, func() (caddy.Destructor, error) {
		p := &pooledDelivery{realm: h.realm}
		if h.Redis == nil {
			logger.Warn("events are queued in memory: events not yet delivered are lost when Caddy exits; configure redis for a durable queue")
			p.queue = events.NewMemoryQueue(0)
		} else {
			sc, err := h.Redis.sessionConfig()
			if err != nil {
				return nil, err
			}
			opts, err := sc.UniversalOptions()
			if err != nil {
				return nil, fmt.Errorf("convex_auth: redis: %w", err)
			}
			p.client = redis.NewUniversalClient(opts)
			p.queue, err = events.NewRedisQueue(p.client, events.RedisQueueOptions{
				KeyPrefix: sc.KeyPrefix, Realm: h.realm, MaxLen: int64(c.MaxLen), ClaimIdle: time.Duration(c.ClaimIdle),
			})
			if err != nil {
				_ = p.client.Close()
				return nil, err
			}
		}
		p.deliverer, err = events.StartDelivery(events.DeliveryConfig{
			URL: c.URL, Secret: secret, Queue: p.queue,
			InitialBackoff: time.Duration(c.InitialBackoff), MaxBackoff: time.Duration(c.MaxBackoff), MaxAge: time.Duration(c.MaxAge),
			OnDead:      func() { eventMetrics.dead.Inc() },
			OnDelivered: func() { eventMetrics.delivered.Inc() },
			Logger:      logger,
		})
		if err != nil {
			if p.client != nil {
				_ = p.client.Close()
			}
			return nil, fmt.Errorf("convex_auth: events: %w", err)
		}
		registerDeadLetters(p)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	h.eventsKey = key
	p := val.(*pooledDelivery)
	return events.NewStore(backend, h.realm, p.queue, logger, func() { eventMetrics.lost.Inc() }), nil
}

func (h *Handler) releaseEvents() error {
	if h.eventsKey == "" {
		return nil
	}
	_, err := deliveries.Delete(h.eventsKey)
	return err
}

// The realms' live queues, for the admin API's dead-letter listing.
var liveQueues struct {
	sync.Mutex
	byRealm map[string]*pooledDelivery
}

func registerDeadLetters(p *pooledDelivery) {
	liveQueues.Lock()
	defer liveQueues.Unlock()
	if liveQueues.byRealm == nil {
		liveQueues.byRealm = map[string]*pooledDelivery{}
	}
	liveQueues.byRealm[p.realm] = p
}

func unregisterDeadLetters(p *pooledDelivery) {
	liveQueues.Lock()
	defer liveQueues.Unlock()
	if liveQueues.byRealm[p.realm] == p {
		delete(liveQueues.byRealm, p.realm)
	}
}

// DeadLettersHandler serves the realm's dead letters as JSON
// ({"dead": [...]}, newest first), for the admin API to mount at
// GET /convex-auth/events/dead; false when the realm sends no events.
func DeadLettersHandler(realm string) (http.Handler, bool) {
	liveQueues.Lock()
	defer liveQueues.Unlock()
	p := liveQueues.byRealm[realm]
	if p == nil {
		return nil, false
	}
	return events.DeadLettersHandler(p.queue), true
}

// eventMetrics count deliveries, created once per process like
// gatewayMetrics.
var eventMetrics struct {
	once      sync.Once
	delivered prometheus.Counter
	dead      prometheus.Counter
	lost      prometheus.Counter
	backlog   backlogCollector
}

func registerEventMetrics(ctx caddy.Context) {
	m := &eventMetrics
	m.once.Do(func() {
		counter := func(name, help string) prometheus.Counter {
			return prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help})
		}
		m.delivered = counter("events_delivered_total", "Events the app's events URL acknowledged (2xx).")
		m.dead = counter("events_dead_letters_total", "Events given up on after events max_age of failed deliveries; listed by the admin API.")
		m.lost = counter("events_lost_total", "Events that could not be queued (the queue's store failed right after the change).")
		m.backlog = newBacklogCollector()
	})
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{m.delivered, m.dead, m.lost, m.backlog} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				h := caddy.Log().Named("events")
				h.Warn("registering an events metric failed", zap.Error(err))
			}
		}
	}
}
