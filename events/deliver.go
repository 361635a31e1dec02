package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/tracing"
)

// Delivery defaults.
const (
	// DefaultInitialBackoff is the wait before an event's first retry;
	// each retry doubles it up to MaxBackoff.
	DefaultInitialBackoff = time.Second
	// DefaultMaxBackoff caps the wait between retries.
	DefaultMaxBackoff = 10 * time.Minute
	// DefaultMaxAge is how long an event is retried before it is
	// dead-lettered.
	DefaultMaxAge = 24 * time.Hour
	// AttemptTimeout bounds one POST: no answer within it is a failure.
	AttemptTimeout = 10 * time.Second
	// DefaultConcurrency is how many POSTs one deliverer makes at once
	// (each for a different user).
	DefaultConcurrency = 8
	// maxHeld bounds the entries a deliverer holds (read, not finished).
	maxHeld = 1000
	// readBatch is how many entries one read asks for.
	readBatch = 100
	// queueRetry is the wait after a queue error (Redis down).
	queueRetry = time.Second
)

// DeliveryConfig configures a Deliverer.
type DeliveryConfig struct {
	// URL receives the POSTs. Required.
	URL string
	// Secret signs them. Required.
	Secret Secret
	// Queue holds the events. Required.
	Queue Queue
	// InitialBackoff, MaxBackoff, MaxAge: see the defaults above.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	MaxAge         time.Duration
	// Concurrency: DefaultConcurrency when zero.
	Concurrency int
	// Client makes the POSTs. Default: a client with AttemptTimeout.
	Client *http.Client
	// OnDead, if set, is called for every dead-lettered event (a metric).
	OnDead func()
	// OnDelivered, if set, is called for every acknowledged event.
	OnDelivered func()
	// Logger gets delivery failures; never a secret or a body.
	Logger *zap.Logger
	// Consumer names this deliverer in the queue. Default: host name, pid
	// and random bytes, unique per start.
	Consumer string
	// TracerProvider traces each attempt (a span linked to the event's
	// traceparent). Default: the provider of the last traced request
	// (Caddy's, once its tracing handler has seen one); none before.
	TracerProvider trace.TracerProvider
}

// Deliverer POSTs the queue's events to the URL until it is stopped.
type Deliverer struct {
	cfg    DeliveryConfig
	cancel context.CancelFunc
	done   chan struct{}
}

type held struct {
	e        Entry
	attempts int
	next     time.Time
	busy     bool
	lost     bool // claimed by another consumer while busy
	lastErr  string
}

type result struct {
	h   *held
	err error
}

// StartDelivery checks cfg and starts delivering in the background.
func StartDelivery(cfg DeliveryConfig) (*Deliverer, error) {
	if cfg.URL == "" || cfg.Queue == nil || len(cfg.Secret.key) == 0 {
		return nil, errors.New("events: delivery needs a URL, a secret and a queue")
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = DefaultInitialBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.InitialBackoff)
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: AttemptTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Deliverer{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go d.run(ctx)
	return d, nil
}

// Stop ends delivery and waits for it: attempts in flight are abandoned
// (their events stay queued and are sent again).
func (d *Deliverer) Stop() {
	d.cancel()
	<-d.done
}

// Queue is the deliverer's queue.
func (d *Deliverer) Queue() Queue { return d.cfg.Queue }

func (d *Deliverer) backoff(attempts int) time.Duration {
	b := d.cfg.InitialBackoff
	for i := 1; i < attempts && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.cfg.MaxBackoff)
}

func (d *Deliverer) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer close(d.done)
	defer wg.Wait()

	in := make(chan []Entry)
	readMore := make(chan struct{}, 1)
	wg.Add(1)
	go func() { defer wg.Done(); d.read(ctx, in, readMore) }()

	heldByRef := map[string]*held{}
	results := make(chan result)
	slots := make(chan struct{}, d.cfg.Concurrency)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var keep <-chan time.Time
	if ci := d.cfg.Queue.ClaimIdle(); ci > 0 {
		t := time.NewTicker(ci / 3)
		defer t.Stop()
		keep = t.C
	}
	askMore := func() {
		if len(heldByRef) < maxHeld {
			select {
			case readMore <- struct{}{}:
			default:
			}
		}
	}
	askMore()
	for {
		select {
		case <-ctx.Done():
			return
		case es := <-in:
			for _, e := range es {
				if _, dup := heldByRef[e.Ref]; !dup {
					heldByRef[e.Ref] = &held{e: e}
				}
			}
			askMore()
		case r := <-results:
			d.settle(ctx, heldByRef, r)
			askMore()
		case <-keep:
			refs := make([]string, 0, len(heldByRef))
			for ref := range heldByRef {
				refs = append(refs, ref)
			}
			lost, err := d.cfg.Queue.Keep(ctx, d.cfg.Consumer, refs)
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.Warn("events: renewing held events failed", zap.Error(err))
			}
			for _, ref := range lost {
				if h := heldByRef[ref]; h != nil && h.busy {
					h.lost = true
				} else {
					delete(heldByRef, ref)
				}
			}
			continue
		case <-timer.C:
		}
		next := d.dispatch(ctx, &wg, heldByRef, results, slots)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// read feeds in with entries each time the loop asks for more.
func (d *Deliverer) read(ctx context.Context, in chan<- []Entry, more <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-more:
		}
	poll:
		for {
			es, err := d.cfg.Queue.Read(ctx, d.cfg.Consumer, readBatch, time.Second)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				d.cfg.Logger.Warn("events: reading the queue failed", zap.Error(err))
				select {
				case <-ctx.Done():
					return
				case <-time.After(queueRetry):
				}
				continue
			}
			if len(es) > 0 {
				select {
				case in <- es:
				case <-ctx.Done():
					return
				}
				break poll
			}
		}
	}
}

// dispatch starts an attempt for each user's first held entry that is due
// and first in its line, and returns how long until the next is due.
func (d *Deliverer) dispatch(ctx context.Context, wg *sync.WaitGroup, heldByRef map[string]*held, results chan<- result, slots chan struct{}) time.Duration {
	now := time.Now()
	// Each key's earliest held entry; a key with an attempt running waits.
	first := map[string]*held{}
	busy := map[string]bool{}
	for _, h := range heldByRef {
		if h.busy {
			busy[h.e.Key] = true
			continue
		}
		if f := first[h.e.Key]; f == nil || compareRefs(h.e.Ref, f.e.Ref) < 0 {
			first[h.e.Key] = h
		}
	}
	due := make([]*held, 0, len(first))
	wait := time.Second
	for k, h := range first {
		if busy[k] {
			continue
		}
		if h.next.After(now) {
			wait = min(wait, h.next.Sub(now))
			continue
		}
		due = append(due, h)
	}
	sort.Slice(due, func(i, j int) bool { return compareRefs(due[i].e.Ref, due[j].e.Ref) < 0 })
	for _, h := range due {
		ok, err := d.cfg.Queue.Head(ctx, h.e)
		if err != nil {
			h.next = now.Add(queueRetry)
			wait = min(wait, queueRetry)
			continue
		}
		if !ok {
			// An earlier event of this user is held elsewhere (another
			// instance, or one that died: claimed after ClaimIdle).
			h.next = now.Add(min(d.cfg.InitialBackoff, time.Second))
			wait = min(wait, h.next.Sub(now))
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			return min(wait, 50*time.Millisecond) // all slots busy
		}
		h.busy = true
		attempt := h.attempts + 1
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.post(ctx, h.e, attempt)
			<-slots
			select {
			case results <- result{h, err}:
			case <-ctx.Done():
			}
		}()
	}
	return max(wait, time.Millisecond)
}

// settle records an attempt's result.
func (d *Deliverer) settle(ctx context.Context, heldByRef map[string]*held, r result) {
	h := r.h
	h.busy = false
	h.attempts++
	if h.lost {
		// Another consumer has it now; an acknowledgement still saves it
		// a send.
		if r.err == nil {
			_ = d.cfg.Queue.Done(ctx, h.e)
		}
		delete(heldByRef, h.e.Ref)
		return
	}
	if r.err == nil {
		if err := d.cfg.Queue.Done(ctx, h.e); err != nil {
			// Sent, but not marked: it will be sent again (at least once).
			d.cfg.Logger.Warn("events: acknowledging a delivered event failed", zap.String("event_id", h.e.ID), zap.Error(err))
			h.next = time.Now().Add(queueRetry)
			return
		}
		delete(heldByRef, h.e.Ref)
		if d.cfg.OnDelivered != nil {
			d.cfg.OnDelivered()
		}
		return
	}
	h.lastErr = r.err.Error()
	now := time.Now()
	if now.Sub(h.e.Created) >= d.cfg.MaxAge {
		dl := DeadLetter{ID: h.e.ID, UserID: h.e.Key, Body: h.e.Body, CreatedAt: h.e.Created.UnixMilli(),
			DeadAt: now.UnixMilli(), Attempts: h.attempts, LastError: h.lastErr}
		if err := d.cfg.Queue.Dead(ctx, h.e, dl); err != nil {
			d.cfg.Logger.Warn("events: dead-lettering an event failed", zap.String("event_id", h.e.ID), zap.Error(err))
			h.next = now.Add(queueRetry)
			return
		}
		delete(heldByRef, h.e.Ref)
		d.cfg.Logger.Error("events: event dead-lettered after max_age of failed deliveries",
			zap.String("event_id", h.e.ID), zap.String("user_id", h.e.Key), zap.Int("attempts", h.attempts), zap.String("last_error", h.lastErr))
		if d.cfg.OnDead != nil {
			d.cfg.OnDead()
		}
		return
	}
	h.next = now.Add(d.backoff(h.attempts))
	if h.attempts == 1 || h.attempts%10 == 0 {
		d.cfg.Logger.Warn("events: delivery failed, will retry",
			zap.String("event_id", h.e.ID), zap.Int("attempts", h.attempts), zap.Duration("retry_in", h.next.Sub(now)), zap.String("error", h.lastErr))
	}
}

// errStatus is a non-2xx answer.
type errStatus int

func (e errStatus) Error() string { return fmt.Sprintf("the receiver answered %d", int(e)) }

// post makes one attempt, signed afresh.
func (d *Deliverer) post(ctx context.Context, e Entry, attempt int) error {
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	ctx, span := d.startSpan(ctx, e, attempt)
	defer span.End()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(e.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "convex_auth-events")
	d.cfg.Secret.SetHeaders(req.Header, e.ID, time.Now(), e.Body)
	if span.IsRecording() {
		tracing.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		span.SetStatus(codes.Error, "the events URL could not be reached")
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	span.SetAttributes(attribute.Int(attrHTTPStatus, resp.StatusCode))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		span.SetStatus(codes.Error, "the events URL did not accept the event")
		return errStatus(resp.StatusCode)
	}
	return nil
}

// Delivery spans: one per attempt, a new trace linked to the request that
// caused the event. Attributes name the event, never its body.
const (
	spanDeliver    = "convex_auth.events.deliver"
	attrEventID    = "convex_auth.event.id"
	attrEventType  = "convex_auth.event.type"
	attrAttempt    = "convex_auth.event.attempt"
	attrHTTPStatus = "http.response.status_code"
)

func (d *Deliverer) startSpan(ctx context.Context, e Entry, attempt int) (context.Context, trace.Span) {
	tp := d.cfg.TracerProvider
	if tp == nil {
		tp = tracing.Provider()
	}
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindClient)}
	if sc, ok := tracing.SpanContextOf(e.TraceParent); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := tp.Tracer(tracing.ScopeName).Start(ctx, spanDeliver, opts...)
	if span.IsRecording() {
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(e.Body, &env)
		span.SetAttributes(attribute.String(attrEventID, e.ID), attribute.String(attrEventType, env.Type),
			attribute.Int(attrAttempt, attempt), attribute.String("http.request.method", http.MethodPost))
	}
	return ctx, span
}
