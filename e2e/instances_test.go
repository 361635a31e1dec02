package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// instanceConfig is one gateway instance of the realm of
// https://app.example.com on port, with its Caddy storage in the directory
// storage, the store at redisURL, more convex_auth options, and the handler
// after it.
func instanceConfig(storage string, port int, redisURL, options, next string) string {
	return fmt.Sprintf(`{
	admin off
	storage file_system %s
}
http://127.0.0.1:%d {
	convex_auth {
		issuer https://app.example.com
		redis %s
		%s
	}
	%s
}
`, storage, port, redisURL, options, next)
}

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
		c := instanceConfig(storage, ports[i], redis.URL(), "protect /loggedin*\n\t\ttrust_upstream_sign_in", fmt.Sprintf("reverse_proxy 127.0.0.1:%d", upstreamPort))
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

// TestInstancesOfOneRealmNeedOneStorage: a second gateway of the same
// realm on the same Redis but with its own Caddy storage (so its own
// generated signing key and flow keys) refuses to start, saying what to
// do; once the first one has stopped, it starts.
func TestInstancesOfOneRealmNeedOneStorage(t *testing.T) {
	redis := redistest.StartServer(t)
	ports := []int{freePort(t), freePort(t)}
	config := func(i int, storage string) string {
		return instanceConfig(storage, ports[i], redis.URL(), "", `respond "app page"`)
	}
	urls := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	first := startCaddy(t, config(0, t.TempDir()), t.TempDir(), urls[0]+"/.well-known/jwks.json")

	otherStorage := t.TempDir()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(config(1, otherStorage)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddyBin(t), "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = isolatedEnv(t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("the instance with its own storage exited without an error:\n%s", out.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("the instance with its own storage still runs after 60s; want it to refuse to start:\n%s", out.String())
	}
	for _, want := range []string{"uses a different Caddy storage", "storage file_system", "signing_key"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out.String())
		}
	}
	if resp, _ := request(t, "GET", urls[0]+"/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first instance stopped serving: %d", resp.StatusCode)
	}

	// Moving the realm to the other storage: stop the first, start on it.
	first.Stop(t)
	startCaddy(t, config(1, otherStorage), t.TempDir(), urls[1]+"/.well-known/jwks.json")
}
