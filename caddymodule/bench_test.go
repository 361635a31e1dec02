package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// benchHandler provisions a handler outside Caddy's config loading, with a
// key file (Caddy's storage needs a running config) and the given store.
func benchHandler(b testing.TB, alg issuer.Algorithm, redis *RedisConfig) *Handler {
	b.Helper()
	key, err := issuer.GenerateKey(alg)
	if err != nil {
		b.Fatal(err)
	}
	pem, err := key.MarshalPKCS8PEM()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		b.Fatal(err)
	}
	h := &Handler{
		Issuer:     "https://app.example.com",
		SigningKey: &SigningKeySource{From: "file", Path: path},
		Protect:    []string{"/loggedin*"},
		Redis:      redis,
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Cleanup() })
	return h
}

func benchSession(b testing.TB, st session.Store) string {
	b.Helper()
	token, _, err := st.Create(context.Background(), session.NewSession{
		UserID: "user_bench", Provider: "bench",
		Profile: session.Profile{Email: "bench@example.com", EmailVerified: true, Name: "Bench"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return token
}

var nextNoop = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// runRequests serves one request shape b.N times through the handler.
func runRequests(b *testing.B, h *Handler, path, cookie string) {
	b.Helper()
	b.ReportAllocs()
	repl := caddy.NewReplacer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "http://app.example.com"+path, nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		if cookie != "" {
			r.Header.Set("Cookie", DefaultSecureCookieName+"="+cookie+"; theme=dark")
		}
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nextNoop); err != nil {
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
		h := benchHandler(b, issuer.EdDSA, nil)
		runRequests(b, h, "/", "")
	})
	b.Run("hot_session_memory", func(b *testing.B) {
		h := benchHandler(b, issuer.RS256, nil)
		runRequests(b, h, "/loggedin", benchSession(b, h.store))
	})
	b.Run("hot_session_redis_cache_hit", func(b *testing.B) {
		srv := redistest.StartServer(b)
		h := benchHandler(b, issuer.RS256, &RedisConfig{URL: srv.URL()})
		runRequests(b, h, "/loggedin", benchSession(b, h.store))
	})
	b.Run("redis_cache_miss", func(b *testing.B) {
		srv := redistest.StartServer(b)
		h := benchHandler(b, issuer.RS256, nil)
		st, err := session.NewRedisStore(session.RedisConfig{URL: srv.URL(), CacheTTL: -1}, session.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		h.store = st
		runRequests(b, h, "/loggedin", benchSession(b, st))
	})
}

// BenchmarkToken compares minting with reusing a fresh token.
func BenchmarkToken(b *testing.B) {
	sess := &session.Session{ID: "sid", UserID: "user_bench", Profile: session.Profile{Email: "bench@example.com", EmailVerified: true, Name: "Bench"}}
	for _, alg := range []issuer.Algorithm{issuer.RS256, issuer.EdDSA, issuer.ES256} {
		b.Run("mint_"+string(alg), func(b *testing.B) {
			h := benchHandler(b, alg, nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.mint(sess); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("reuse", func(b *testing.B) {
		h := benchHandler(b, issuer.RS256, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.tokenFor(sess, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
