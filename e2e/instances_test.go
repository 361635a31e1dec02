package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// TestTwoInstancesShareRedisAndStorage runs two gateways on one Redis and
// one Caddy storage: a session made on one works on the other, sign-out on
// one is refused on the other (within a second:
// BenchmarkRevocationReachesOtherInstance measures it), both publish the
// same key.
func TestTwoInstancesShareRedisAndStorage(t *testing.T) {
	redis := redistest.StartServer(t)
	storage := t.TempDir()
	upstreamPort := freePort(t)
	ports := []int{freePort(t), freePort(t)}
	config := func(i int) string {
		c := fmt.Sprintf(`{
	admin off
	storage file_system %s
}
http://127.0.0.1:%d {
	convex_auth {
		issuer https://app.example.com
		redis %s
		protect /loggedin*
		trust_upstream_sign_in
	}
	reverse_proxy 127.0.0.1:%d
}
`, storage, ports[i], redis.URL(), upstreamPort)
		if i == 0 {
			// The first instance also serves the shared upstream.
			c += signInUpstream(upstreamPort, "user_shared", "shared@example.com")
		}
		return c
	}
	// Start both at once: they must settle on one generated signing key.
	urls := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	done := make(chan struct{}, 2)
	for i := range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			startCaddy(t, config(i), t.TempDir(), urls[i]+"/.well-known/jwks.json")
		}()
	}
	<-done
	<-done
	if t.Failed() {
		t.FailNow()
	}
	_, jwksA := request(t, "GET", urls[0]+"/.well-known/jwks.json", nil)
	_, jwksB := request(t, "GET", urls[1]+"/.well-known/jwks.json", nil)
	if jwksA != jwksB {
		t.Fatalf("the instances publish different keys:\n%s\n%s", jwksA, jwksB)
	}

	resp, _ := request(t, "POST", urls[0]+"/signin", nil)
	sess := sessionCookie(t, resp)
	for i, u := range urls {
		if resp, body := request(t, "GET", u+"/loggedin", withCookie(sess)); resp.StatusCode != http.StatusOK || body != "app page" {
			t.Fatalf("instance %d with the session: %d %q", i, resp.StatusCode, body)
		}
	}

	// Sign out on A; B must refuse the session.
	resp, _ = request(t, "POST", urls[0]+"/auth/signout", withCookie(sess, map[string]string{"Sec-Fetch-Site": "same-origin"}))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign-out on A: %d", resp.StatusCode)
	}
	refusedEventually(t, urls[1], sess, "on B, the session signed out on A")
}
