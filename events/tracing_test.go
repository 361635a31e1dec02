package events

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/convex-auth/caddy-convex-auth/internal/tracing"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// An event queued by a traced request keeps the request's traceparent in
// the queue (both kinds), and its delivery is a span of its own, linked to
// that request, whose context the receiver gets.
func TestDeliverySpanLinksToTheRequest(t *testing.T) {
	for name, mk := range queues(t) {
		t.Run(name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

			mem := session.NewMemoryStore(session.Options{Realm: "test"})
			t.Cleanup(func() { _ = mem.Close() })
			q := mk(t)
			st := NewStore(mem, "test", q, nil, nil)
			reqCtx, reqSpan := tp.Tracer("caddy").Start(context.Background(), "handler", trace.WithSpanKind(trace.SpanKindServer))
			if _, err := st.CreateUser(reqCtx, session.NewUser{Profile: session.Profile{Email: "ada@example.com"}}); err != nil {
				t.Fatal(err)
			}
			reqSpan.End()
			// An untraced change queues no traceparent.
			if _, err := st.CreateUser(context.Background(), session.NewUser{}); err != nil {
				t.Fatal(err)
			}

			es, err := q.Read(context.Background(), "c1", 10, time.Second)
			if err != nil || len(es) != 2 {
				t.Fatalf("Read = %d entries, %v; want 2", len(es), err)
			}
			want := tracing.Handoff(reqCtx)
			if es[0].TraceParent != want || !strings.Contains(want, reqSpan.SpanContext().TraceID().String()) {
				t.Fatalf("queued traceparent %q; want the request's %q", es[0].TraceParent, want)
			}
			if es[1].TraceParent != "" {
				t.Errorf("untraced event queued traceparent %q; want none", es[1].TraceParent)
			}

			var mu sync.Mutex
			var got []string
			rc := newReceiver(t)
			rc.fail.Store(ptr(func(r *http.Request) int {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, r.Header.Get("traceparent"))
				return 0
			}))
			_, sec := testSecret(t)
			q2 := mk(t) // a fresh queue: the first one's entries are held by c1
			for _, e := range es {
				enqueueAll(t, q2, e.Event)
			}
			cfg := testDelivery(t, rc.srv.URL, sec, q2)
			cfg.TracerProvider = tp
			start(t, cfg)
			rc.waitApplied(t, 2)

			// A span ends after its receiver answered: poll.
			var deliveries []sdktrace.ReadOnlySpan
			for deadline := time.Now().Add(eventually); ; time.Sleep(10 * time.Millisecond) {
				deliveries = deliveries[:0]
				for _, s := range rec.Ended() {
					if s.Name() == spanDeliver {
						deliveries = append(deliveries, s)
					}
				}
				if len(deliveries) >= 2 || time.Now().After(deadline) {
					break
				}
			}
			if len(deliveries) != 2 {
				t.Fatalf("%d delivery spans; want 2", len(deliveries))
			}
			linked := 0
			for _, s := range deliveries {
				if s.Parent().IsValid() {
					t.Errorf("delivery span has a parent; want a new root")
				}
				if s.SpanContext().TraceID() == reqSpan.SpanContext().TraceID() {
					t.Errorf("delivery span continues the request's trace; want a link")
				}
				for _, l := range s.Links() {
					if l.SpanContext.SpanID() == reqSpan.SpanContext().SpanID() && l.SpanContext.TraceID() == reqSpan.SpanContext().TraceID() {
						linked++
					}
				}
				for _, kv := range s.Attributes() {
					if strings.Contains(kv.Value.Emit(), "ada@example.com") {
						t.Errorf("delivery span attribute %s holds the event's email", kv.Key)
					}
				}
				mu.Lock()
				all := strings.Join(got, " ")
				mu.Unlock()
				if !strings.Contains(all, s.SpanContext().TraceID().String()) {
					t.Errorf("the receiver got traceparents %v, none of the delivery's trace %s", got, s.SpanContext().TraceID())
				}
			}
			if linked != 1 {
				t.Errorf("%d delivery spans link to the request; want 1", linked)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Backlog counts the events not yet delivered and the dead letters kept.
func TestBacklog(t *testing.T) {
	for name, mk := range queues(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := mk(t)
			if b, err := q.Backlog(ctx); err != nil || b != (Backlog{}) {
				t.Fatalf("empty queue: %+v, %v", b, err)
			}
			enqueueAll(t, q, seqEvent("alice", 1), seqEvent("alice", 2), seqEvent("bob", 1), seqEvent("carol", 1))
			if b, _ := q.Backlog(ctx); b != (Backlog{Pending: 4}) {
				t.Fatalf("4 queued: %+v", b)
			}
			es, err := q.Read(ctx, "c1", 10, time.Second)
			if err != nil || len(es) != 4 {
				t.Fatalf("Read = %d, %v", len(es), err)
			}
			// Held by a deliverer is still pending.
			if b, _ := q.Backlog(ctx); b != (Backlog{Pending: 4}) {
				t.Fatalf("4 held: %+v", b)
			}
			if err := q.Done(ctx, es[0]); err != nil {
				t.Fatal(err)
			}
			if err := q.Dead(ctx, es[2], DeadLetter{ID: es[2].ID}); err != nil {
				t.Fatal(err)
			}
			if b, _ := q.Backlog(ctx); b != (Backlog{Pending: 2, Dead: 1}) {
				t.Fatalf("one delivered, one dead: %+v; want 2 pending, 1 dead", b)
			}
		})
	}
}
