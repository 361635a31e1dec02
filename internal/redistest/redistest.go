// Package redistest starts a throwaway redis-server on a loopback port for
// tests. Without redis-server installed, tests skip locally and fail when
// the CI environment variable is set: CI must never skip them.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long a server may take to answer PING.
	startTimeout = 10 * time.Second
	// startAttempts retries on a fresh port if another process took ours.
	startAttempts = 3
)

// Server is a running (or stopped) redis-server owned by one test.
type Server struct {
	// Addr is 127.0.0.1:port; it stays the same across Stop and Restart.
	Addr string

	t     testing.TB
	bin   string
	dir   string
	port  int
	extra []string // extra redis-server arguments
	// sentinelConf, if set, runs a Sentinel with this config file.
	sentinelConf string

	mu     sync.Mutex
	proc   *os.Process
	exited chan error // receives once when proc exits
}

// StartServer runs redis-server for t; t.Cleanup stops it. extraArgs are
// appended to the redis-server command line (e.g. "--maxmemory", "1mb").
func StartServer(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	return startServer(t, freePort, extraArgs...)
}

// startServer runs redis-server on a port from pick.
func startServer(t testing.TB, pick func() (int, error), extraArgs ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found in PATH (%v): CI must install it (apt-get install redis-server)", err)
		}
		t.Skipf("redis-server not found in PATH: install it to run this test")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), extra: extraArgs}
	return s.startOnFreePort(pick, "redis-server")
}

// startOnFreePort starts s on a port from pick, trying another when the
// port was taken meanwhile.
func (s *Server) startOnFreePort(pick func() (int, error), what string) *Server {
	s.t.Helper()
	s.t.Cleanup(s.Stop)
	var lastErr error
	for range startAttempts {
		port, err := pick()
		if err != nil {
			s.t.Fatalf("finding a free loopback port: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	s.t.Fatalf("starting %s: %v", what, lastErr)
	return nil
}

// URL is redis://Addr/0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop kills the server (its data is lost) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Restart stops the server if it runs and starts an empty one on the same
// port, so clients configured with Addr reconnect to it.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("restarting redis-server on %s: %v", s.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) start() error {
	logPath := filepath.Join(s.dir, "redis.log")
	var args []string
	if s.sentinelConf != "" {
		args = []string{s.sentinelConf, "--sentinel"}
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", logPath,
	)
	if s.sentinelConf == "" {
		args = append(args, "--save", "", "--appendonly", "no")
	}
	cmd := exec.Command(s.bin, append(args, s.extra...)...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited (%v); log tail:\n%s", err, tail(logPath))
		default:
		}
		if ping(s.Addr) == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server did not answer PING on %s within %s; log tail:\n%s", s.Addr, startTimeout, tail(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.proc, s.exited = cmd.Process, exited
	s.mu.Unlock()
	return nil
}

// StartSentinel runs a Sentinel that monitors master under masterName (a
// quorum of one), for testing Sentinel clients; t.Cleanup stops it.
func StartSentinel(t testing.TB, master *Server, masterName string) *Server {
	t.Helper()
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(master.Addr)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("sentinel monitor %s %s %s 1\n", masterName, host, port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: master.bin, dir: dir, sentinelConf: conf}
	return s.startOnFreePort(freePort, "redis sentinel")
}

// StartCluster runs a one-node Redis Cluster owning every hash slot, so
// cluster clients and the server's cross-slot checks can be tested.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	s := StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	reply, err := command(s.Addr, "CLUSTER ADDSLOTSRANGE 0 16383")
	if err != nil || !strings.HasPrefix(reply, "+OK") {
		t.Fatalf("assigning slots: %q %v", reply, err)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := command(s.Addr, "CLUSTER INFO")
		if err == nil && strings.Contains(reply, "cluster_state:ok") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not become ok: %q %v", reply, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	reply, err := command(addr, "PING")
	if err != nil {
		return err
	}
	// A server started with --requirepass answers NOAUTH: it is up.
	if r := strings.TrimSpace(reply); r != "+PONG" && !strings.HasPrefix(r, "-NOAUTH") {
		return fmt.Errorf("unexpected PING reply %q", r)
	}
	return nil
}

// command sends one inline command and returns its reply: a status line, or
// a bulk string's header line and body.
func command(addr, line string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(line + "\r\n")); err != nil {
		return "", err
	}
	rd := bufio.NewReader(conn)
	first, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(first, "$") {
		return first, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(first[1:]))
	if err != nil || n < 0 {
		return first, err
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(rd, body); err != nil {
		return "", err
	}
	return first + string(body), nil
}

// tail returns the end of a log file for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const keep = 2000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}
