package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// brokenConvex answers the claims query as the test says: a role, a
// reply holding a reserved claim, or nothing (down).
type brokenConvex struct {
	mu    sync.Mutex
	reply string // "" answers 502 (down)
}

func (c *brokenConvex) set(reply string) {
	c.mu.Lock()
	c.reply = reply
	c.mu.Unlock()
}

func (c *brokenConvex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	reply := c.reply
	c.mu.Unlock()
	if reply == "" {
		http.Error(w, "upstream connect error", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, reply)
}

// TestClaimsQueryFailures runs the built gateway against a Convex that
// misbehaves: a reply naming a reserved claim is refused whole (and
// logged), and while Convex is down the last result serves up to
// max_stale, after which the rules that read claims answer 503 and the
// others go on.
func TestClaimsQueryFailures(t *testing.T) {
	convex := &brokenConvex{}
	srv := httptest.NewServer(convex)
	t.Cleanup(srv.Close)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startCaddy(t, fmt.Sprintf(`{
	admin off
}
%s {
	route {
		convex_auth {
			issuer %s
			trust_upstream_sign_in /signin
			claims {
				convex_url %s
				query auth:claims
				ttl 1s
				max_stale 2s
				timeout 1s
			}
			protect /loggedin*
			protect /admin* {
				allow claim role admin
			}
		}
		@signin path /signin
		header @signin Convex-Auth-Sign-In "{\"sub\":\"{query.user}\"}"
		respond @signin "signed in"
		respond "{http.request.header.X-Convex-Token}"
	}
}
`, base, base, srv.URL), t.TempDir(), base+"/.well-known/jwks.json")
	signIn := func(user string) *http.Cookie {
		resp, _ := request(t, "POST", base+"/signin?user="+user, map[string]string{"Sec-Fetch-Site": "same-origin"})
		return sessionCookie(t, resp)
	}

	t.Run("a reserved claim refuses the reply", func(t *testing.T) {
		convex.set(`{"status":"success","value":{"role":"admin","sub":"root"},"logLines":[]}`)
		mallory := signIn("mallory")
		resp, body := request(t, "GET", base+"/admin", withCookie(mallory, fetchHeaders))
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "claims_unavailable") {
			t.Fatalf("a rule on a refused reply: %d %s", resp.StatusCode, body)
		}
		resp, body = request(t, "GET", base+"/loggedin", withCookie(mallory))
		if c := jwtPayload(t, body); resp.StatusCode != http.StatusOK || c["sub"] != "mallory" || c["role"] != nil {
			t.Fatalf("the token after a refused reply: %d %v", resp.StatusCode, c)
		}
		if !strings.Contains(p.Log(), `"sub\" is a reserved claim`) {
			t.Fatalf("the refusal is not in the log:\n%s", p.Log())
		}
	})

	t.Run("Convex down: max_stale, then 503 on claim rules", func(t *testing.T) {
		convex.set(`{"status":"success","value":{"role":"admin"},"logLines":[]}`)
		ada := signIn("ada")
		asked := time.Now() // the last result is no older than this
		if resp, _ := request(t, "GET", base+"/admin", withCookie(ada, fetchHeaders)); resp.StatusCode != http.StatusOK {
			t.Fatalf("with Convex up: %d", resp.StatusCode)
		}
		convex.set("")
		downAt := time.Now()
		time.Sleep(1500 * time.Millisecond) // past ttl, within max_stale
		resp, body := request(t, "GET", base+"/admin", withCookie(ada, fetchHeaders))
		// ttl + max_stale is 3 s: a run slower than that rightly sees 503.
		if (resp.StatusCode != http.StatusOK || jwtPayload(t, body)["role"] != "admin") && time.Since(asked) < 3*time.Second {
			t.Fatalf("within max_stale: %d", resp.StatusCode)
		}
		deadline := downAt.Add(eventually)
		for {
			resp, body := request(t, "GET", base+"/admin", withCookie(ada, fetchHeaders))
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "claims_unavailable") {
				t.Logf("503 %s after Convex went down", time.Since(downAt).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %d %s after Convex went down", resp.StatusCode, eventually)
			}
			time.Sleep(100 * time.Millisecond)
		}
		resp, body = request(t, "GET", base+"/loggedin", withCookie(ada))
		if resp.StatusCode != http.StatusOK || jwtPayload(t, body)["role"] != nil {
			t.Fatalf("a rule without claims while Convex is down: %d", resp.StatusCode)
		}
		convex.set(`{"status":"success","value":{"role":"admin"},"logLines":[]}`)
		deadline = time.Now().Add(eventually)
		for {
			if resp, _ := request(t, "GET", base+"/admin", withCookie(ada, fetchHeaders)); resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not back %s after Convex came back", eventually)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
