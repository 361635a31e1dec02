package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// runRequests serves one request shape b.N times through the gateway.
func runRequests(b *testing.B, g *Gateway, path, cookie string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "http://app.example.com"+path, nil)
		if cookie != "" {
			r.Header.Set("Cookie", DefaultSecureCookieName+"="+cookie+"; theme=dark")
		}
		w := httptest.NewRecorder()
		if err := g.ServeHTTP(w, r, nextNoop); err != nil {
			b.Fatal(err)
		}
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkRequest measures the request path alone (no network, no proxy).
func BenchmarkRequest(b *testing.B) {
	b.Run("open_no_cookie", func(b *testing.B) {
		g := newTestGateway(b, issuer.EdDSA, nil)
		runRequests(b, g, "/", "")
	})
	b.Run("hot_session_memory", func(b *testing.B) {
		g := newTestGateway(b, issuer.RS256, nil)
		runRequests(b, g, "/loggedin", newSession(b, g.cfg.Store, "user_bench"))
	})
	// As hot_session_memory, with claims in the token and a rule that
	// reads them.
	b.Run("hot_session_memory_claims_rules", func(b *testing.B) {
		g := claimsGateway(b, issuer.RS256)
		runRequests(b, g, "/loggedin", newSession(b, g.cfg.Store, "user_bench"))
	})
	b.Run("hot_session_redis_cache_hit", func(b *testing.B) {
		st := newRedisStore(b, session.RedisConfig{})
		g := newTestGateway(b, issuer.RS256, st)
		runRequests(b, g, "/loggedin", newSession(b, st, "user_bench"))
	})
	b.Run("redis_cache_miss", func(b *testing.B) {
		st := newRedisStore(b, session.RedisConfig{CacheTTL: -1})
		g := newTestGateway(b, issuer.RS256, st)
		runRequests(b, g, "/loggedin", newSession(b, st, "user_bench"))
	})
	// The whole miss path: the session from Redis and a new EdDSA token
	// every request (reuse off).
	b.Run("cold_miss_mint_EdDSA", func(b *testing.B) {
		st := newRedisStore(b, session.RedisConfig{CacheTTL: -1})
		g := newTestGateway(b, issuer.EdDSA, st, func(c *Config) { c.TokenReuseMargin = issuer.DefaultTokenTTL })
		runRequests(b, g, "/loggedin", newSession(b, st, "user_bench"))
		if mints := g.tokens.mints.Load(); mints < uint64(b.N) {
			b.Fatalf("%d mints for %d requests: reuse is not off", mints, b.N)
		}
	})
}

// BenchmarkToken compares minting with reusing a fresh token.
func BenchmarkToken(b *testing.B) {
	sess := &session.Session{ID: "sid", UserID: "user_bench", Profile: session.Profile{Email: "bench@example.com", EmailVerified: true, Name: "Bench"}}
	for _, alg := range []issuer.Algorithm{issuer.RS256, issuer.EdDSA, issuer.ES256} {
		b.Run("mint_"+string(alg), func(b *testing.B) {
			g := newTestGateway(b, alg, nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.mint(context.Background(), sess, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("reuse", func(b *testing.B) {
		g := newTestGateway(b, issuer.RS256, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.tokenFor(context.Background(), sess, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// newRedisStore starts a redis-server for the test and a store on it.
func newRedisStore(tb testing.TB, rc session.RedisConfig) *session.RedisStore {
	tb.Helper()
	srv := redistest.StartServer(tb)
	rc.URL = srv.URL()
	st, err := session.NewRedisStore(rc, session.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}
