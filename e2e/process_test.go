package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// caddyProcess is one `caddy run` of the built binary.
type caddyProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	mu     sync.Mutex
	out    bytes.Buffer
}

func (p *caddyProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Log is everything the process printed so far.
func (p *caddyProcess) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// isolatedEnv keeps Caddy's storage and autosave under dataDir, so tests
// touch nothing of the machine's.
func isolatedEnv(dataDir string, extra ...string) []string {
	env := append(os.Environ(),
		"HOME="+dataDir,
		"XDG_DATA_HOME="+filepath.Join(dataDir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dataDir, "config"),
	)
	return append(env, extra...)
}

// startCaddy runs the binary with a Caddyfile and waits until readyURL
// answers. The process is stopped when the test ends.
func startCaddy(t *testing.T, caddyfile, dataDir, readyURL string, env ...string) *caddyProcess {
	t.Helper()
	bin := caddyBin(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	return startCaddyFile(t, bin, path, dataDir, readyURL, env...)
}

func startCaddyFile(t *testing.T, bin, path, dataDir, readyURL string, env ...string) *caddyProcess {
	t.Helper()
	p := &caddyProcess{}
	p.cmd = exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	p.cmd.Env = isolatedEnv(dataDir, env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() { _ = p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("caddy log:\n%s", p.Log())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			t.Fatalf("caddy exited before it was ready:\n%s", p.Log())
		default:
		}
		resp, err := http.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy not ready at %s after %v (last error %v):\n%s", readyURL, startTimeout, err, p.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the process gracefully (SIGTERM, as systemd does) and waits
// for it to exit.
func (p *caddyProcess) Stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("caddy did not exit 30s after SIGTERM:\n%s", p.Log())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startTimeout bounds how long a started Caddy may take to answer: a
// bound only, generous for a starved machine.
const startTimeout = time.Minute

// requestTimeout bounds one request of a test to the built binary: it only
// ends a request that hangs, so it is generous, and a starved machine (a
// password hash under load, a store call at its 2 s deadline) stays within
// it.
const requestTimeout = time.Minute

// client never follows redirects, so tests see them.
var client = &http.Client{
	Timeout:       requestTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func request(t *testing.T, method, url string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, req, headers)
}

// send sets headers on req, sends it and reads the whole body.
func send(t *testing.T, req *http.Request, headers map[string]string) (*http.Response, string) {
	t.Helper()
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "convex_session") && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	return nil
}

// signInUpstream is a Caddy site on 127.0.0.1:port standing in for the
// app: POST /signin signs sub in (Convex-Auth-Sign-In), anything else is
// "app page".
func signInUpstream(port int, sub, email string) string {
	return fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	route /signin {
		header Convex-Auth-Sign-In `+"`"+`{"sub":%q,"email":%q,"email_verified":true}`+"`"+`
		respond "signed in"
	}
	respond "app page"
}
`, port, sub, email)
}

// signInUpstreamByQuery is signInUpstream whose POST /signin signs in the
// user named by ?user=.
func signInUpstreamByQuery(port int) string {
	return fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	route /signin {
		header Convex-Auth-Sign-In "{\"sub\":\"{query.user}\"}"
		respond "signed in"
	}
	respond "app page"
}
`, port)
}

func withCookie(c *http.Cookie, headers ...map[string]string) map[string]string {
	h := map[string]string{"Cookie": fmt.Sprintf("%s=%s", c.Name, c.Value)}
	for _, more := range headers {
		for k, v := range more {
			h[k] = v
		}
	}
	return h
}
