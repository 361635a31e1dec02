package redistest

import (
	"strings"
	"testing"
)

func TestStartStopRestart(t *testing.T) {
	s := StartServer(t)
	if err := ping(s.Addr); err != nil {
		t.Fatalf("server does not answer: %v", err)
	}
	s.Stop()
	if err := ping(s.Addr); err == nil {
		t.Fatal("server still answers after Stop")
	}
	s.Stop() // a second Stop does nothing
	s.Restart()
	if err := ping(s.Addr); err != nil {
		t.Fatalf("server does not answer after Restart on the same port: %v", err)
	}
}

func TestStartCluster(t *testing.T) {
	s := StartCluster(t)
	reply, err := command(s.Addr, "CLUSTER KEYSLOT {a}x")
	if err != nil || reply != ":15495\r\n" {
		t.Fatalf("CLUSTER KEYSLOT = %q, %v", reply, err)
	}
}

func TestStartSentinel(t *testing.T) {
	master := StartServer(t)
	s := StartSentinel(t, master, "mymaster")
	reply, err := command(s.Addr, "SENTINEL GET-MASTER-ADDR-BY-NAME mymaster")
	// An array of host and port; a nil reply if it does not know the master.
	if err != nil || !strings.HasPrefix(reply, "*2") {
		t.Fatalf("sentinel does not know the master: %q %v", reply, err)
	}
}
