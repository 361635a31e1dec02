package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/authz"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// testIssuer is the issuer every test gateway signs for.
const testIssuer = "https://app.example.com"

// gatewayOption changes a test gateway's config before it is built.
type gatewayOption func(*Config)

// newTestGateway builds a gateway for https://app.example.com with a new key
// of alg, protecting /loggedin*, on st (nil: a new in-process store).
func newTestGateway(tb testing.TB, alg issuer.Algorithm, st session.Store, opts ...gatewayOption) *Gateway {
	tb.Helper()
	return newTestGatewayFor(tb, issuer.Config{Issuer: testIssuer}, alg, st, opts...)
}

// newTestGatewayFor is newTestGateway with the issuer's config (its clock,
// its token TTL) given.
func newTestGatewayFor(tb testing.TB, ic issuer.Config, alg issuer.Algorithm, st session.Store, opts ...gatewayOption) *Gateway {
	tb.Helper()
	key, err := issuer.GenerateKey(alg)
	if err != nil {
		tb.Fatal(err)
	}
	iss, err := issuer.New(ic, key)
	if err != nil {
		tb.Fatal(err)
	}
	if st == nil {
		mem := session.NewMemoryStore(session.Options{})
		tb.Cleanup(func() { _ = mem.Close() })
		st = mem
	}
	rules, err := authz.Compile([]authz.RuleConfig{{Paths: []string{"/loggedin*"}}})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{
		Issuer: iss,
		Store:  st,
		Logger: zap.NewNop(),
		Rules:  rules,
	}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(g.Close)
	return g
}

func newSession(tb testing.TB, st session.Store, userID string) string {
	tb.Helper()
	token, _, err := st.Create(context.Background(), session.NewSession{
		UserID: userID, Provider: "test",
		Profile: session.Profile{Email: "bench@example.com", EmailVerified: true, Name: "Bench"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

// nextFunc adapts a function to Next.
type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

var nextNoop = nextFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// serveUpstream sends r through g and returns the request the next handler saw.
func serveUpstream(t *testing.T, g *Gateway, r *http.Request) *http.Request {
	t.Helper()
	var seen *http.Request
	next := nextFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = r
		return nil
	})
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if seen == nil {
		t.Fatal("the request did not reach the next handler")
	}
	return seen
}
