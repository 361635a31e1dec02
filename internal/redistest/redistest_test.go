package redistest

import (
	"strings"
	"testing"
	"time"
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

func TestStartClusterWithReplicas(t *testing.T) {
	c := StartClusterWithReplicas(t, 3, 1)
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes; want 6", len(c.Nodes))
	}
	m := c.MasterFor("{a}x")
	r := c.Failover(m)
	if got := c.MasterFor("{a}x"); got != r {
		t.Fatalf("after CLUSTER FAILOVER the master is %s; want the replica %s", got.Addr, r.Addr)
	}
	start := time.Now()
	r2 := c.KillMaster(r)
	t.Logf("killed master replaced after %v", time.Since(start))
	if got := c.MasterFor("{a}x"); got != r2 || r2 != m {
		t.Fatalf("after the kill the master is %s; want the old master %s", got.Addr, m.Addr)
	}
}

func TestStartSentinelDeployment(t *testing.T) {
	d := StartSentinelDeployment(t, "mymaster", 2, 3)
	old := d.Master()
	start := time.Now()
	promoted := d.KillMaster()
	t.Logf("killed master replaced after %v", time.Since(start))
	if promoted == old {
		t.Fatal("the killed master is still named master")
	}
}
