package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// TestTokensCarryTheAuthentication: an injected token says when and how
// the user last authenticated in the session (auth_time, amr: "pwd" for a
// password sign-in, none for a provider's); a reauthentication moves
// auth_time in the very next token, though a token was cached for reuse.
func TestTokensCarryTheAuthentication(t *testing.T) {
	g := newTestGateway(t, issuer.EdDSA, nil)
	ctx := context.Background()
	claimsOf := func(token string) (authTime int64, amr []string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "https://app.example.com/page", nil)
		r.AddCookie(&http.Cookie{Name: g.cfg.Cookie.NameFor(r), Value: token})
		parts := strings.Split(serveUpstream(t, g, r).Header.Get(DefaultInjectHeader), ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c struct {
			AuthTime int64    `json:"auth_time"`
			AMR      []string `json:"amr"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		return c.AuthTime, c.AMR
	}
	for provider, wantAMR := range map[string][]string{"password": {"pwd"}, "github": nil, "email": nil} {
		token, sess, err := g.cfg.Store.Create(ctx, session.NewSession{UserID: "user_" + provider, Provider: provider})
		if err != nil {
			t.Fatal(err)
		}
		at, amr := claimsOf(token)
		if at != sess.CreatedAt.Unix() || !reflect.DeepEqual(amr, wantAMR) {
			t.Fatalf("%s: auth_time %d, amr %v; want %d, %v", provider, at, amr, sess.CreatedAt.Unix(), wantAMR)
		}
		later := sess.CreatedAt.Add(7 * time.Minute)
		if err := g.cfg.Store.Reauthenticate(ctx, sess.UserID, sess.ID, later, []string{"pwd"}); err != nil {
			t.Fatal(err)
		}
		if at, amr := claimsOf(token); at != later.Unix() || !reflect.DeepEqual(amr, []string{"pwd"}) {
			t.Fatalf("%s after reauthentication: auth_time %d, amr %v; want %d, [pwd]", provider, at, amr, later.Unix())
		}
	}
}
