package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// A profile set on the user's sessions (a new display name) drops the
// token this gateway would have reused: the next request's token carries
// the new name.
func TestProfileChangeReachesTheNextToken(t *testing.T) {
	clock := testclock.New(time.Now())
	g, tok := clockGateway(t, clock, 5*time.Minute) // the clock stands still: the token would be reused
	injected := func() (token, name string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "https://app.example.com/page", nil)
		r.AddCookie(&http.Cookie{Name: g.cfg.Cookie.NameFor(r), Value: tok})
		token = serveUpstream(t, g, r).Header.Get(DefaultInjectHeader)
		raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Name string }
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		return token, c.Name
	}
	first, name := injected()
	if again, _ := injected(); again != first || name != "Bench" {
		t.Fatalf("the token was not reused (%v) or names %q", again != first, name)
	}
	if n, err := g.cfg.Store.SetProfile(context.Background(), "user_reuse",
		session.Profile{Email: "bench@example.com", EmailVerified: true, Name: "Bench Renamed"}); err != nil || n != 1 {
		t.Fatalf("SetProfile = %d, %v", n, err)
	}
	if _, name := injected(); name != "Bench Renamed" {
		t.Fatalf("the next token names %q; want the new name", name)
	}
}
