package caddymodule

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// Ports of the in-process Caddy, picked free once per test binary so that
// two overlapping `go test` runs, or a running `make run` (8080, 2019), do
// not collide with these tests.
var (
	adminPort, httpPort, httpsPort, otherPort int
	gatewayOrigin, otherOrigin                string
)

func TestMain(m *testing.M) {
	ports, err := freePorts(4)
	if err != nil {
		fmt.Fprintln(os.Stderr, "picking free ports:", err)
		os.Exit(1)
	}
	adminPort, httpPort, httpsPort, otherPort = ports[0], ports[1], ports[2], ports[3]
	gatewayOrigin = fmt.Sprintf("http://localhost:%d", httpPort)
	otherOrigin = fmt.Sprintf("http://localhost:%d", otherPort)
	sessionCookieName = defaultSessionCookieName()
	os.Exit(m.Run())
}

// freePorts asks the kernel for n distinct free loopback ports, holding
// each open until all are picked.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// testerTimeout bounds loading a config into the in-process Caddy and each
// request a Tester sends. caddytest's 5 s is too little on a starved
// machine: provisioning hashes, generates keys and dials Redis, under -race.
// A bound only, so a passing test waits no longer for it.
const testerTimeout = time.Minute

// newTester is caddytest's Tester on this binary's admin port.
func newTester(t *testing.T) *caddytest.Tester {
	return caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{
		AdminPort:          adminPort,
		LoadRequestTimeout: testerTimeout,
		TestRequestTimeout: testerTimeout,
	})
}
