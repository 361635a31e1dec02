package caddymodule

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/convex-auth/caddy-convex-auth/authz"
	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/session"
)

func TestClaimsPlaceholders(t *testing.T) {
	claims, err := authz.ParseClaims([]byte(`{"role":"admin","orgs":["o1","o2"],"level":3,"beta":true,"plan":{"tier":"pro"}}`))
	if err != nil {
		t.Fatal(err)
	}
	repl := caddy.NewReplacer()
	at := time.Unix(1_790_000_000, 0)
	setAuthzPlaceholders(repl, edge.Authenticated{Session: &session.Session{ID: "s", UserID: "u", AuthTime: at}, Claims: claims})
	for key, want := range map[string]string{
		"http.auth.user.claims.role":  "admin",
		"http.auth.user.claims.orgs":  "o1,o2",
		"http.auth.user.claims.level": "3",
		"http.auth.user.claims.beta":  "true",
		"http.auth.user.claims.plan":  `{"tier":"pro"}`,
		"http.auth.user.auth_time":    "1790000000",
	} {
		if got, _ := repl.GetString(key); got != want {
			t.Errorf("{%s} = %q; want %q", key, got, want)
		}
	}
	if _, ok := repl.Get("http.auth.user.claims.missing"); ok {
		t.Error("a claim the session lacks has a placeholder")
	}
	// Without claims (none configured, or unavailable): no claims placeholders.
	repl = caddy.NewReplacer()
	setAuthzPlaceholders(repl, edge.Authenticated{Session: &session.Session{AuthTime: at}})
	if _, ok := repl.Get("http.auth.user.claims.role"); ok {
		t.Error("claims placeholders without claims")
	}
}
