package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// functionsStandIn is the example's Convex functions behind Convex's HTTP
// API (examples/nextjs/standin/functions.mjs, convex-test in Node).
type functionsStandIn struct {
	URL      string
	adminKey string
	cmd      *exec.Cmd
}

// startFunctionsStandIn runs the stand-in, which accepts tokens of the
// gateways whose issuers are listed (applicationID convex), with env for
// the functions (e.g. CONVEX_AUTH_GATEWAY_URL).
func startFunctionsStandIn(t *testing.T, issuers []string, env ...string) *functionsStandIn {
	t.Helper()
	node, err := exec.LookPath("node")
	needTool(t, "node", "install Node.js 20.19 or later", err == nil)
	_, err = os.Stat(filepath.Join(nextjsExampleDir, "node_modules", "convex-test"))
	needTool(t, "convex-test", "run npm ci in examples/nextjs (make test does)", err == nil)

	var providers []map[string]string
	for _, iss := range issuers {
		providers = append(providers, map[string]string{"domain": iss, "applicationID": "convex"})
	}
	pj, _ := json.Marshal(providers)
	s := &functionsStandIn{adminKey: "e2e-standin-admin-key"}
	s.cmd = exec.Command(node, "standin/functions.mjs")
	s.cmd.Dir = nextjsExampleDir
	s.cmd.Env = append(os.Environ(), append(env, "STANDIN_PROVIDERS="+string(pj), "STANDIN_ADMIN_KEY="+s.adminKey)...)
	s.cmd.Stderr = &prefixWriter{t: t, prefix: "stand-in: "}
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() {
		}
	}()
	select {
	case line, ok := <-lines:
		var ready struct{ URL string }
		if !ok || json.Unmarshal([]byte(line), &ready) != nil || ready.URL == "" {
			t.Fatalf("the functions stand-in did not start: %q", line)
		}
		s.URL = ready.URL
	case <-time.After(60 * time.Second):
		t.Fatal("the functions stand-in did not start within 60 s")
	}
	return s
}

// run calls a function with the deployment's admin key, as `npx convex
// run` does, and returns its value.
func (s *functionsStandIn) run(t *testing.T, kind, path string, args map[string]any) any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"path": path, "args": args, "format": "json"})
	req, _ := http.NewRequest("POST", s.URL+"/api/"+kind, strings.NewReader(string(body)))
	resp, text := send(t, req, map[string]string{"Content-Type": "application/json", "Authorization": "Convex " + s.adminKey})
	var out struct {
		Status       string
		Value        any
		ErrorMessage string
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(text), &out) != nil || out.Status != "success" {
		t.Fatalf("%s %s: %d %s", kind, path, resp.StatusCode, text)
	}
	return out.Value
}

// callsOf counts the calls of fn made as subject.
func (s *functionsStandIn) callsOf(t *testing.T, fn, subject string) int {
	t.Helper()
	_, text := request(t, "GET", s.URL+"/_standin/calls", nil)
	var calls []struct {
		Fn      string
		Subject *string
	}
	if err := json.Unmarshal([]byte(text), &calls); err != nil {
		t.Fatalf("the stand-in's calls: %v %q", err, text)
	}
	n := 0
	for _, c := range calls {
		if c.Fn == fn && c.Subject != nil && *c.Subject == subject {
			n++
		}
	}
	return n
}

// prefixWriter logs a child's output through the test.
type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(fmt.Sprint(w.prefix, line))
	}
	return len(b), nil
}
