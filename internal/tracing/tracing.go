// Package tracing starts the gateway's OpenTelemetry spans. Caddy's tracing
// handler owns the tracer provider and sets no global one, so a span is
// started with the provider of the request's own span, and only when that
// span is sampled: an untraced request starts nothing and allocates
// nothing here. Work that runs later without a request (event delivery)
// uses the provider of the last traced request (Handoff, Provider).
//
// No attribute set through this package may hold a cookie, token, code,
// email address or secret; callers pass fixed words, names and IDs.
package tracing

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the gateway's spans.
const ScopeName = "github.com/convex-auth/caddy-convex-auth"

// Span is a span the gateway started, or none: the zero Span, whose methods
// do nothing.
type Span struct{ s trace.Span }

// Start starts a child span of ctx's span when that one is sampled (it
// records, or recorded: a mail sent after the response still belongs to
// its request); otherwise it returns ctx and the zero Span.
func Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, Span) {
	parent := trace.SpanFromContext(ctx)
	if !sampled(parent) {
		return ctx, Span{}
	}
	tp := parent.TracerProvider()
	remember(tp)
	ctx, s := tp.Tracer(ScopeName).Start(ctx, name, trace.WithSpanKind(kind))
	return ctx, Span{s}
}

// sampled reports whether span is a sampled span of this process's tracer
// provider, ended or not.
func sampled(span trace.Span) bool {
	sc := span.SpanContext()
	return sc.IsValid() && sc.IsSampled() && !sc.IsRemote()
}

// Recording reports whether s records. Build attributes only when it
// does: a variadic call allocates its slice even when nothing records.
func (s Span) Recording() bool { return s.s != nil && s.s.IsRecording() }

// SetAttributes sets attributes on s.
func (s Span) SetAttributes(kv ...attribute.KeyValue) {
	if s.s != nil {
		s.s.SetAttributes(kv...)
	}
}

// Fail marks s failed with description, a fixed phrase (never an error's
// text, which may quote an address or a provider's answer).
func (s Span) Fail(description string) {
	if s.s != nil {
		s.s.SetStatus(codes.Error, description)
	}
}

// End ends s.
func (s Span) End() {
	if s.s != nil {
		s.s.End()
	}
}

// lastProvider is the tracer provider of the last sampled request span.
// Caddy keeps one provider per process (replaced on a reload that stops
// and starts tracing; a provider that was shut down starts no spans).
var lastProvider atomic.Pointer[providerRef]

type providerRef struct{ tp trace.TracerProvider }

func remember(tp trace.TracerProvider) {
	if r := lastProvider.Load(); r != nil && r.tp == tp {
		return
	}
	lastProvider.Store(&providerRef{tp})
}

// Provider is the tracer provider of the last traced request, or a no-op
// one before any: for work done without a request.
func Provider() trace.TracerProvider {
	if r := lastProvider.Load(); r != nil {
		return r.tp
	}
	return noop.NewTracerProvider()
}

// Handoff is for work that continues later without the request (an
// event's delivery): it returns the W3C traceparent of ctx's span ("" when
// ctx carries no valid span context) and, when that span is sampled, keeps
// its tracer provider for the later work (Provider).
func Handoff(ctx context.Context) string {
	span := trace.SpanFromContext(ctx)
	if !span.SpanContext().IsValid() {
		return ""
	}
	if sampled(span) {
		remember(span.TracerProvider())
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier.Get("traceparent")
}

// SpanContextOf parses a W3C traceparent; ok is false when it is empty or
// malformed.
func SpanContextOf(traceparent string) (sc trace.SpanContext, ok bool) {
	if traceparent == "" {
		return trace.SpanContext{}, false
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	sc = trace.SpanContextFromContext(ctx)
	return sc, sc.IsValid()
}

// Inject writes ctx's span context into an outgoing request's headers
// (traceparent, tracestate).
func Inject(ctx context.Context, h propagation.TextMapCarrier) {
	propagation.TraceContext{}.Inject(ctx, h)
}
