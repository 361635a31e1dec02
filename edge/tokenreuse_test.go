package edge

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// clockGateway builds a gateway whose issuer runs on clock (the gateway
// reads the same one), with a session.
func clockGateway(t *testing.T, clock *testclock.Clock, ttl time.Duration, opts ...gatewayOption) (*Gateway, string) {
	t.Helper()
	g := newTestGatewayFor(t, issuer.Config{Issuer: testIssuer, TokenTTL: ttl, Now: clock.Now}, issuer.EdDSA, nil, opts...)
	return g, newSession(t, g.cfg.Store, "user_reuse")
}

// injectedTimes sends one request and returns the iat and exp of the token
// the upstream got in the header.
func injectedTimes(t *testing.T, g *Gateway, sessionToken string) (iat, exp time.Time) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/page", nil)
	r.AddCookie(&http.Cookie{Name: g.cfg.Cookie.NameFor(r), Value: sessionToken})
	seen := serveUpstream(t, g, r)
	parts := strings.Split(seen.Header.Get(DefaultInjectHeader), ".")
	if len(parts) != 3 {
		t.Fatalf("injected token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Iat, Exp int64 }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
}

// TestInjectedTokenKeepsTheMargin: without a cookie preset the injected
// token is reused for much longer than the preset window, and every token
// the upstream gets has at least token_reuse_margin (default half of
// token_ttl) of its life left.
func TestInjectedTokenKeepsTheMargin(t *testing.T) {
	const ttl = 5 * time.Minute
	for _, tt := range []struct {
		name       string
		margin     time.Duration
		wantMargin time.Duration
	}{
		{"default margin", 0, ttl / 2},
		{"token_reuse_margin 4m", 4 * time.Minute, 4 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := testclock.New(time.Unix(1_800_000_000, 300_000_000))
			g, sess := clockGateway(t, clock, ttl, func(c *Config) { c.TokenReuseMargin = tt.margin })
			const step, steps = 7 * time.Second, 200 // several token lifetimes
			for range steps {
				_, exp := injectedTimes(t, g, sess)
				if left := exp.Sub(clock.Now()); left < tt.wantMargin {
					t.Fatalf("injected token has %s left, want at least %s", left, tt.wantMargin)
				}
				clock.Advance(step)
			}
			mints := int64(g.tokens.mints.Load())
			// One mint per (ttl - margin) of clock time, give or take one.
			if want := int64(steps*step/(ttl-tt.wantMargin)) + 2; mints > want || mints < want-3 {
				t.Errorf("%d requests over %s minted %d tokens, want about %d", steps, steps*step, mints, want)
			}
		})
	}
}

// TestPresetTokenIsYoung: with a cookie preset the apps' helpers hand the
// injected token to Convex's browser client, so its iat is never older than
// token_reuse.
func TestPresetTokenIsYoung(t *testing.T) {
	for _, preset := range []string{InjectCookieBetterAuth, InjectCookieConvexAuth, InjectCookieConvexAuth2} {
		t.Run(preset, func(t *testing.T) {
			clock := testclock.New(time.Unix(1_800_000_000, 0))
			g, sess := clockGateway(t, clock, 5*time.Minute, func(c *Config) { c.InjectCookie = preset })
			reused := 0
			var last time.Time
			for range 100 {
				iat, _ := injectedTimes(t, g, sess)
				if age := clock.Now().Sub(iat); age > DefaultTokenReuse {
					t.Fatalf("injected token's iat is %s old, want at most token_reuse %s", age, DefaultTokenReuse)
				}
				if iat.Equal(last) {
					reused++
				}
				last = iat
				clock.Advance(1500 * time.Millisecond)
			}
			if reused == 0 {
				t.Error("no token was reused within the window")
			}
		})
	}
}

func TestTokenReuseMarginChecked(t *testing.T) {
	if err := CheckConfig(Config{TokenReuseMargin: 5 * time.Second}); err == nil || !strings.Contains(err.Error(), "token_reuse_margin") {
		t.Errorf("5s margin: %v, want an error naming token_reuse_margin", err)
	}
	key, err := issuer.GenerateKey(issuer.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuer.New(issuer.Config{Issuer: testIssuer, TokenTTL: time.Minute}, key)
	if err != nil {
		t.Fatal(err)
	}
	st := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = st.Close() })
	_, err = New(Config{Issuer: iss, Store: st, Logger: zap.NewNop(), TokenReuseMargin: 2 * time.Minute})
	if err == nil || !strings.Contains(err.Error(), "token_ttl") {
		t.Errorf("margin over token_ttl: %v, want an error naming token_ttl", err)
	}
}
