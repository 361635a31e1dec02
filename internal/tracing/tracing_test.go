package tracing

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Without a recording span, Start starts nothing and allocates nothing.
func TestStartWithoutRecordingSpanAllocatesNothing(t *testing.T) {
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { _ = never.Shutdown(context.Background()) })
	sampledOut, _ := never.Tracer("caddy").Start(context.Background(), "handler")
	for name, ctx := range map[string]context.Context{"no span": context.Background(), "sampled out": sampledOut} {
		allocs := testing.AllocsPerRun(100, func() {
			c, s := Start(ctx, "child", trace.SpanKindInternal)
			if s.Recording() {
				s.SetAttributes()
			}
			s.Fail("x")
			s.End()
			if c != ctx {
				t.Fatal("ctx changed")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations; want 0", name, allocs)
		}
	}
}

// A child span uses the parent's provider, and Handoff carries the parent
// to later work: its traceparent, and its provider through Provider.
func TestStartAndHandoff(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, parent := tp.Tracer("caddy").Start(context.Background(), "handler")
	_, child := Start(ctx, "child", trace.SpanKindInternal)
	child.End()
	parent.End()
	// Work the request left running (a mail sent after the response)
	// still gets its span under the request's.
	_, late := Start(ctx, "late", trace.SpanKindInternal)
	late.End()
	ended := rec.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans ended; want child, handler, late", len(ended))
	}
	for _, s := range []sdktrace.ReadOnlySpan{ended[0], ended[2]} {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.InstrumentationScope().Name != ScopeName {
			t.Errorf("span %s: parent %s, scope %s; want under handler in scope %s", s.Name(), s.Parent().SpanID(), s.InstrumentationScope().Name, ScopeName)
		}
	}

	lastProvider.Store(nil)
	tpHeader := Handoff(ctx)
	sc, ok := SpanContextOf(tpHeader)
	if !ok || sc.TraceID() != parent.SpanContext().TraceID() || sc.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("Handoff = %q, parsed %v %v; want the parent's context", tpHeader, sc, ok)
	}
	if Provider() != trace.TracerProvider(tp) {
		t.Error("Handoff did not keep the span's provider for later work")
	}
	if Handoff(context.Background()) != "" {
		t.Error("Handoff of an untraced context is not empty")
	}
	for _, bad := range []string{"", "00-zz-yy-01", "garbage"} {
		if _, ok := SpanContextOf(bad); ok {
			t.Errorf("SpanContextOf(%q) ok", bad)
		}
	}
}
