package edge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/convex-auth/caddy-convex-auth/internal/tracing"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// traced stands in for Caddy's tracing handler: a tracer provider of its
// own (no global one) and a server span in each request's context.
type traced struct {
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
}

func newTraced(t *testing.T, opts ...sdktrace.TracerProviderOption) *traced {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(rec)}, opts...)...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &traced{rec: rec, tp: tp}
}

// serve sends r through g under a server span, as Caddy's tracing handler
// does, and returns the response and that span's context.
func (tr *traced) serve(t *testing.T, g *Gateway, r *http.Request, next Next) (*httptest.ResponseRecorder, trace.SpanContext) {
	t.Helper()
	ctx, span := tr.tp.Tracer("caddy").Start(r.Context(), "handler", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	w := httptest.NewRecorder()
	if err := g.ServeHTTP(w, r.WithContext(ctx), next); err != nil {
		t.Fatal(err)
	}
	return w, span.SpanContext()
}

// gatewaySpans are the ended spans of the gateway's own scope.
func (tr *traced) gatewaySpans() []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tr.rec.Ended() {
		if s.InstrumentationScope().Name == tracing.ScopeName {
			out = append(out, s)
		}
	}
	return out
}

func attrOf(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// fakeProvider is an OAuth provider whose code exchange accepts one code.
type fakeProvider struct{ code, email string }

func (fakeProvider) Info() provider.Info {
	return provider.Info{Name: "fake", Label: "Fake", Kind: provider.KindOIDC}
}
func (fakeProvider) AuthCodeURL(_ context.Context, f provider.Flow) (string, error) {
	return "https://provider.example/authorize?state=" + url.QueryEscape(f.State), nil
}
func (p fakeProvider) Identity(_ context.Context, _ provider.Flow, cb provider.Callback) (provider.Identity, error) {
	if cb.Code != p.code {
		return provider.Identity{}, errors.New("bad code")
	}
	return provider.Identity{Subject: "acct-1", Email: p.email, EmailVerified: true, Name: "Ada"}, nil
}

// keptMailer keeps the mails it is given.
type keptMailer struct {
	mu   sync.Mutex
	sent []mail.Message
}

func (m *keptMailer) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

func setCookieLike(t *testing.T, w *httptest.ResponseRecorder, part string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if strings.Contains(c.Name, part) && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", part, w.Header()["Set-Cookie"])
	return nil
}

// Under a recording request span the gateway adds a child span for the
// code exchange, the mail, the session lookup and the mint, all in the
// request's trace, and none of their attributes holds a cookie, token,
// code, email address or secret.
func TestSpansUnderTheRequestSpan(t *testing.T) {
	tr := newTraced(t)
	const code, email = "oauth-code-4f9a1c", "ada@example.com"
	st := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = st.Close() })
	mailer := &keptMailer{}
	g := newTestGateway(t, issuer.EdDSA, st, func(c *Config) {
		c.SignIn = &signin.Config{
			Origin: testIssuer, Users: st,
			OAuth: []provider.OAuth{fakeProvider{code: code, email: email}},
			Email: &signin.EmailConfig{Mailer: mailer},
		}
	})
	var secrets []string // every value no attribute may contain
	var requestSpans []trace.SpanContext

	// OAuth: start, then the provider's callback with the code.
	w, sc := tr.serve(t, g, httptest.NewRequest("GET", testIssuer+"/auth/signin/fake", nil), nextNoop)
	requestSpans = append(requestSpans, sc)
	if w.Code != http.StatusFound {
		t.Fatalf("OAuth start: %d %s", w.Code, w.Body)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	flow := setCookieLike(t, w, "flow")
	secrets = append(secrets, flow.Value, loc.Query().Get("state"))
	cb := httptest.NewRequest("GET", testIssuer+"/auth/callback/fake?code="+code+"&state="+url.QueryEscape(loc.Query().Get("state")), nil)
	cb.AddCookie(flow)
	w, sc = tr.serve(t, g, cb, nextNoop)
	requestSpans = append(requestSpans, sc)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("OAuth callback: %d %s", w.Code, w.Body)
	}
	sess := setCookieLike(t, w, "convex_session")
	secrets = append(secrets, sess.Value, code, email)

	// A magic link by mail.
	form := httptest.NewRequest("POST", testIssuer+"/auth/signin/email", strings.NewReader(url.Values{"email": {"bob@example.com"}}.Encode()))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	form.Header.Set("Sec-Fetch-Site", "same-origin")
	w, sc = tr.serve(t, g, form, nextNoop)
	requestSpans = append(requestSpans, sc)
	if len(mailer.sent) != 1 {
		t.Fatalf("email sign-in: %d %s, %d mails; want one", w.Code, w.Body, len(mailer.sent))
	}
	secrets = append(secrets, "bob@example.com")
	for _, f := range strings.Fields(mailer.sent[0].Text) {
		if u, err := url.Parse(f); err == nil && u.RawQuery != "" {
			for _, vs := range u.Query() {
				secrets = append(secrets, vs...)
			}
		}
	}

	// The request path with the session: lookup and mint.
	page := httptest.NewRequest("GET", testIssuer+"/loggedin", nil)
	page.AddCookie(sess)
	var jwt string
	_, sc = tr.serve(t, g, page, nextFunc(func(_ http.ResponseWriter, r *http.Request) error {
		jwt = r.Header.Get(DefaultInjectHeader)
		return nil
	}))
	requestSpans = append(requestSpans, sc)
	if jwt == "" {
		t.Fatal("no token went upstream")
	}
	secrets = append(secrets, jwt)

	parents := map[trace.SpanID]trace.TraceID{}
	for _, sc := range requestSpans {
		parents[sc.SpanID()] = sc.TraceID()
	}
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range tr.gatewaySpans() {
		byName[s.Name()] = append(byName[s.Name()], s)
		if tid, ok := parents[s.Parent().SpanID()]; !ok || tid != s.SpanContext().TraceID() {
			t.Errorf("span %s is not a child of a request span in the request's trace", s.Name())
		}
		allowed := map[string]bool{attrCacheHit: true, attrLookupResult: true, attrTokenKeyID: true, attrTokenAlgorithm: true, attrProvider: true}
		for _, kv := range s.Attributes() {
			if !allowed[string(kv.Key)] {
				t.Errorf("span %s has attribute %s, which no test vets", s.Name(), kv.Key)
			}
			for _, secret := range secrets {
				if secret != "" && strings.Contains(kv.Value.Emit(), secret) {
					t.Errorf("span %s attribute %s holds a secret: %q", s.Name(), kv.Key, kv.Value.Emit())
				}
			}
		}
		if len(s.Events()) > 0 || s.Status().Description != "" && s.Status().Description != "session store unreachable" {
			t.Errorf("span %s has events %v or status %q", s.Name(), s.Events(), s.Status().Description)
		}
	}
	for _, name := range []string{spanOAuthExchange, spanMailSend, spanSessionLookup, spanTokenMint} {
		if len(byName[name]) == 0 {
			t.Errorf("no %s span; got %v", name, byName)
		}
	}
	if ex := byName[spanOAuthExchange]; len(ex) > 0 {
		if v, _ := attrOf(ex[0], attrProvider); v.AsString() != "fake" {
			t.Errorf("exchange span provider %q; want fake", v.AsString())
		}
		if ex[0].SpanKind() != trace.SpanKindClient {
			t.Errorf("exchange span kind %v; want client", ex[0].SpanKind())
		}
	}
	if lk := byName[spanSessionLookup]; len(lk) > 0 {
		last := lk[len(lk)-1]
		if v, _ := attrOf(last, attrLookupResult); v.AsString() != "found" {
			t.Errorf("lookup result %q; want found", v.AsString())
		}
	}
	if m := byName[spanTokenMint]; len(m) > 0 {
		if v, _ := attrOf(m[0], attrTokenKeyID); v.AsString() != g.cfg.Issuer.SigningKey().ID() {
			t.Errorf("mint span kid %q; want the signing key's", v.AsString())
		}
	}
}

// The lookup span says whether the session came from the local cache, and
// a reused token costs no mint span.
func TestLookupSpanCacheHit(t *testing.T) {
	tr := newTraced(t)
	st := newRedisStore(t, session.RedisConfig{})
	g := newTestGateway(t, issuer.EdDSA, st)
	tok := newSession(t, st, "user_traced")
	for range 2 {
		r := httptest.NewRequest("GET", testIssuer+"/loggedin", nil)
		r.AddCookie(&http.Cookie{Name: DefaultSecureCookieName, Value: tok})
		if w, _ := tr.serve(t, g, r, nextNoop); w.Code != http.StatusOK {
			t.Fatalf("request: %d", w.Code)
		}
	}
	var hits []bool
	mints := 0
	for _, s := range tr.gatewaySpans() {
		switch s.Name() {
		case spanSessionLookup:
			v, _ := attrOf(s, attrCacheHit)
			hits = append(hits, v.AsBool())
		case spanTokenMint:
			mints++
		}
	}
	if len(hits) != 2 || hits[0] || !hits[1] {
		t.Errorf("cache_hit of two lookups: %v; want [false true]", hits)
	}
	if mints != 1 {
		t.Errorf("%d mint spans for two requests of one session; want 1 (the second reuses)", mints)
	}

	// A store that cannot answer: the span says so, in words.
	srvDown := newTraced(t)
	down := session.NewMemoryStore(session.Options{})
	_ = down.Close()
	gd := newTestGateway(t, issuer.EdDSA, down)
	r := httptest.NewRequest("GET", testIssuer+"/", nil)
	r.AddCookie(&http.Cookie{Name: DefaultSecureCookieName, Value: tok})
	srvDown.serve(t, gd, r, nextNoop)
	spans := srvDown.gatewaySpans()
	if len(spans) != 1 {
		t.Fatalf("store down: %d spans; want the lookup", len(spans))
	}
	if v, _ := attrOf(spans[0], attrLookupResult); v.AsString() != "store_error" || spans[0].Status().Description != "session store unreachable" {
		t.Errorf("store down: result %q, status %q", v.AsString(), spans[0].Status().Description)
	}
}

// A request whose span does not record (sampled out) gets no child spans.
func TestNoSpansWhenTheRequestSpanDoesNotRecord(t *testing.T) {
	tr := newTraced(t, sdktrace.WithSampler(sdktrace.NeverSample()))
	st := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = st.Close() })
	g := newTestGateway(t, issuer.EdDSA, st)
	r := httptest.NewRequest("GET", testIssuer+"/loggedin", nil)
	r.AddCookie(&http.Cookie{Name: DefaultSecureCookieName, Value: newSession(t, st, "user_sampled_out")})
	if w, _ := tr.serve(t, g, r, nextNoop); w.Code != http.StatusOK {
		t.Fatalf("request: %d", w.Code)
	}
	if n := len(tr.rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded; want none", n)
	}
}

// BenchmarkTracedRequest is the hot-session request path under a sampled
// request span (started per request, as Caddy's tracing does, and counted
// here), spans exported nowhere: what turning tracing on costs.
func BenchmarkTracedRequest(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	g := newTestGateway(b, issuer.EdDSA, nil)
	cookie := newSession(b, g.cfg.Store, "user_bench")
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "http://app.example.com/loggedin", nil)
		r.Header.Set("Cookie", DefaultSecureCookieName+"="+cookie+"; theme=dark")
		ctx, span := tp.Tracer("caddy").Start(r.Context(), "handler")
		w := httptest.NewRecorder()
		if err := g.ServeHTTP(w, r.WithContext(ctx), nextNoop); err != nil {
			b.Fatal(err)
		}
		span.End()
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
