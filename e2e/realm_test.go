package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// TestTwoRealmsShareOneRedis runs two Caddy processes for two sites (each
// its own issuer, so its own realm) on one Redis. A session of one is no
// session at the other, whether the sites keep the default key prefixes or
// share one: 401 and no token, never a 503. Both sites are on 127.0.0.1, so
// a browser would send each its cookies to the other.
func TestTwoRealmsShareOneRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	for _, prefix := range []string{"", "shared:"} {
		t.Run(fmt.Sprintf("key_prefix %q", prefix), func(t *testing.T) {
			upstreamPort := freePort(t)
			ports := []int{freePort(t), freePort(t)}
			origins := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
			redisBlock := "redis " + srv.URL()
			if prefix != "" {
				redisBlock = fmt.Sprintf("redis {\n\t\t\turl %s\n\t\t\tkey_prefix %s\n\t\t}", srv.URL(), prefix)
			}
			config := func(i int) string {
				c := fmt.Sprintf(`{
	admin off
}
%s {
	convex_auth {
		issuer %s
		%s
		protect /loggedin*
		trust_upstream_sign_in
	}
	reverse_proxy 127.0.0.1:%d
}
`, origins[i], origins[i], redisBlock, upstreamPort)
				if i == 0 {
					c += signInUpstream(upstreamPort, "user_a", "a@example.com")
				}
				return c
			}
			procs := make([]*caddyProcess, 2)
			for i := range 2 {
				procs[i] = startCaddy(t, config(i), t.TempDir(), origins[i]+"/.well-known/jwks.json")
			}
			realms := []string{session.DefaultRealm(origins[0], "convex"), session.DefaultRealm(origins[1], "convex")}
			for i, p := range procs {
				if !strings.Contains(p.Log(), `"realm":"`+realms[i]+`"`) {
					t.Fatalf("instance %d did not log its realm %q at start:\n%s", i, realms[i], p.Log())
				}
			}

			resp, _ := request(t, "POST", origins[0]+"/signin", nil)
			a := sessionCookie(t, resp)
			nameB := edge.DefaultCookieNameFor(realms[1], false)
			if a.Name != edge.DefaultCookieNameFor(realms[0], false) || a.Name == nameB {
				t.Fatalf("session cookie %q; want realm A's default name, not B's %q", a.Name, nameB)
			}
			if resp, body := request(t, "GET", origins[0]+"/loggedin", withCookie(a)); resp.StatusCode != http.StatusOK || body != "app page" {
				t.Fatalf("A with its own session: %d %q", resp.StatusCode, body)
			}
			for _, name := range []string{a.Name, nameB} {
				h := map[string]string{"Cookie": name + "=" + a.Value, "Accept": "application/json"}
				if resp, body := request(t, "GET", origins[1]+"/loggedin", h); resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("B with A's session as %s: %d %q; want 401", name, resp.StatusCode, body)
				}
				if resp, body := request(t, "GET", origins[1]+"/auth/token", h); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, `"token"`) {
					t.Fatalf("B's /auth/token with A's session as %s: %d %q; want 401 and no token", name, resp.StatusCode, body)
				}
			}
			// A still serves its session: B's refusals left it alone.
			if resp, _ := request(t, "GET", origins[0]+"/loggedin", withCookie(a)); resp.StatusCode != http.StatusOK {
				t.Fatalf("A after B refused its session: %d", resp.StatusCode)
			}
			if prefix == "" {
				want := session.DefaultKeyPrefixFor(realms[0])
				keys := rc.Keys(context.Background(), "convex_auth:*").Val()
				if len(keys) == 0 {
					t.Fatal("no keys under convex_auth:")
				}
				for _, k := range keys {
					if strings.Contains(k, ":instances:") {
						continue // each running instance's storage record, B's too (scale.md)
					}
					if !strings.HasPrefix(k, want) {
						t.Fatalf("key %q is not under realm A's default prefix %q", k, want)
					}
				}
			}
		})
	}
}
