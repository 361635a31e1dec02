package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Failover timings for tests. The defaults (cluster-node-timeout 15 s,
// down-after-milliseconds 30 s) would make every failover test crawl.
const (
	// ClusterNodeTimeout is the cluster-node-timeout of test clusters: a
	// killed master is failed over about twice this long after it died.
	ClusterNodeTimeout = 500 * time.Millisecond
	// SentinelDownAfter is the down-after-milliseconds of test Sentinels:
	// under 1 s a starved CPU (CI, shared machines) makes Sentinels fail a
	// healthy new master over again, losing what it took alone.
	SentinelDownAfter = time.Second
	// SentinelFailoverTimeout is the failover-timeout of test Sentinels.
	SentinelFailoverTimeout = 2 * time.Second
	// topologyTimeout bounds how long a topology may take to settle.
	topologyTimeout = 20 * time.Second
)

// Quick full syncs: the default waits 5 s for more replicas before a
// diskless sync starts.
var replicationArgs = []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}

// Cluster is a real Redis Cluster of masters with replicas on loopback.
type Cluster struct {
	// Nodes are every node, masters first as created; roles change on
	// failover, so ask Master and ReplicaOf.
	Nodes []*Server
	t     testing.TB
}

// StartClusterWithReplicas runs masters*(1+replicasPer) cluster nodes and
// joins them with redis-cli --cluster create. Ports are chosen so that each
// node's bus port (port+10000) is free too. extraArgs go on every node's
// command line (e.g. "--appendonly", "yes": a node restarted with Restart
// then keeps its data). t.Cleanup stops every node.
func StartClusterWithReplicas(t testing.TB, masters, replicasPer int, extraArgs ...string) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatal("redis-cli --cluster create needs at least 3 masters")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-cli not found in PATH (%v): CI must install it (apt-get install redis-tools)", err)
		}
		t.Skipf("redis-cli not found in PATH: install it to run this test")
	}
	c := &Cluster{t: t}
	args := append([]string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout.Milliseconds())),
		// A replica whose master died promotes itself however long the
		// link was down: tests kill masters at any moment.
		"--cluster-replica-validity-factor", "0",
		"--cluster-allow-replica-migration", "no",
	}, replicationArgs...)
	args = append(args, extraArgs...)
	for range masters * (1 + replicasPer) {
		c.Nodes = append(c.Nodes, startServer(t, freeClusterPort, args...))
	}
	create := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		create = append(create, n.Addr)
	}
	create = append(create, "--cluster-replicas", strconv.Itoa(replicasPer), "--cluster-yes")
	out, err := exec.Command(cli, create...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy()
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("log of %s:\n%s", n.Addr, tail(filepath.Join(n.dir, "redis.log")))
			}
		}
	})
	return c
}

// Addrs are the addresses of every node, as cluster seeds.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// WaitHealthy waits until every running node reports cluster_state:ok,
// every node agrees on which masters own slots, and every replica's link
// to its master is up.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	var why string
	deadline := time.Now().Add(topologyTimeout)
	for time.Now().Before(deadline) {
		if why = c.unhealthy(); why == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("cluster did not settle within %s: %s", topologyTimeout, why)
}

func (c *Cluster) unhealthy() string {
	var view string
	for _, n := range c.running() {
		info, err := command(n.Addr, "CLUSTER INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return fmt.Sprintf("%s: state %q %v", n.Addr, info, err)
		}
		nodes, err := clusterNodes(n.Addr)
		if err != nil {
			return fmt.Sprintf("%s: CLUSTER NODES: %v", n.Addr, err)
		}
		var masters []string
		for _, e := range nodes {
			if e.master && e.slots && !e.failed {
				masters = append(masters, e.addr)
			}
			if e.self && !e.master {
				repl, err := command(n.Addr, "INFO replication")
				if err != nil || !strings.Contains(repl, "master_link_status:up") {
					return fmt.Sprintf("%s: replica link not up", n.Addr)
				}
			}
		}
		slices.Sort(masters)
		v := strings.Join(masters, ",")
		if view != "" && v != view {
			return fmt.Sprintf("nodes disagree on masters: %s vs %s", view, v)
		}
		view = v
	}
	return ""
}

func (c *Cluster) running() []*Server {
	var out []*Server
	for _, n := range c.Nodes {
		if n.running() {
			out = append(out, n)
		}
	}
	return out
}

// MasterFor returns the node that serves key as master now.
func (c *Cluster) MasterFor(key string) *Server {
	c.t.Helper()
	for _, n := range c.running() {
		reply, err := command(n.Addr, "CLUSTER KEYSLOT "+key)
		if err != nil || !strings.HasPrefix(reply, ":") {
			continue
		}
		slot, _ := strconv.Atoi(strings.TrimSpace(reply[1:]))
		nodes, err := clusterNodes(n.Addr)
		if err != nil {
			continue
		}
		for _, e := range nodes {
			if e.master && !e.failed && e.owns(slot) {
				return c.byAddr(e.addr)
			}
		}
	}
	c.t.Fatalf("no node serves %q", key)
	return nil
}

// ReplicaOf returns a running replica of master, waiting for one if a
// failover is still settling.
func (c *Cluster) ReplicaOf(master *Server) *Server {
	c.t.Helper()
	var replica *Server
	waitUntil(c.t, "a replica of "+master.Addr, func() bool {
		replica = c.replicaOf(master)
		return replica != nil
	})
	return replica
}

func (c *Cluster) replicaOf(master *Server) *Server {
	nodes, err := clusterNodes(master.Addr)
	if err != nil {
		return nil
	}
	var masterID string
	for _, e := range nodes {
		if e.self {
			masterID = e.id
		}
	}
	for _, e := range nodes {
		if e.masterID == masterID && !e.failed {
			if r := c.byAddr(e.addr); r != nil && r.running() {
				if repl, err := command(r.Addr, "INFO replication"); err == nil && strings.Contains(repl, "master_link_status:up") {
					return r
				}
			}
		}
	}
	return nil
}

func (c *Cluster) byAddr(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// Failover runs CLUSTER FAILOVER on a replica of master (a manual failover:
// no write is lost) and waits until the replica serves as master.
func (c *Cluster) Failover(master *Server) (promoted *Server) {
	c.t.Helper()
	r := c.ReplicaOf(master)
	if reply, err := command(r.Addr, "CLUSTER FAILOVER"); err != nil || !strings.HasPrefix(reply, "+OK") {
		c.t.Fatalf("CLUSTER FAILOVER on %s: %q %v", r.Addr, reply, err)
	}
	c.waitMaster(r)
	return r
}

// KillMaster kills master's process (its unreplicated writes are lost) and
// waits until its replica serves as master. The killed node stays down;
// Restart brings it back as a replica.
func (c *Cluster) KillMaster(master *Server) (promoted *Server) {
	c.t.Helper()
	r := c.ReplicaOf(master)
	master.Stop()
	c.waitMaster(r)
	return r
}

func (c *Cluster) waitMaster(n *Server) {
	c.t.Helper()
	deadline := time.Now().Add(topologyTimeout)
	for time.Now().Before(deadline) {
		if isMaster(n.Addr) {
			if c.unhealthy() == "" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("%s did not become master within %s: %s", n.Addr, topologyTimeout, c.unhealthy())
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

type clusterNode struct {
	id, addr, masterID          string
	self, master, failed, slots bool
	ranges                      [][2]int
}

func (e clusterNode) owns(slot int) bool {
	for _, r := range e.ranges {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// clusterNodes parses CLUSTER NODES as one node sees it.
func clusterNodes(addr string) ([]clusterNode, error) {
	reply, err := command(addr, "CLUSTER NODES")
	if err != nil {
		return nil, err
	}
	_, body, ok := strings.Cut(reply, "\n") // bulk header
	if !ok {
		return nil, fmt.Errorf("unexpected reply %q", reply)
	}
	var out []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		flags := f[2]
		e := clusterNode{
			id:       f[0],
			addr:     strings.SplitN(strings.SplitN(f[1], "@", 2)[0], ",", 2)[0],
			masterID: f[3],
			self:     strings.Contains(flags, "myself"),
			master:   strings.Contains(flags, "master"),
			failed:   strings.Contains(flags, "fail") || strings.Contains(flags, "noaddr"),
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // a slot being migrated
				continue
			}
			lo, hi, found := strings.Cut(s, "-")
			if !found {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil {
				e.ranges = append(e.ranges, [2]int{a, b})
				e.slots = true
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// freeClusterPort picks a loopback port below 55536 that is free and whose
// cluster bus port, port+10000, is free too.
func freeClusterPort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(55536-20000)
		if portFree(p) && portFree(p+10000) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port pair (p, p+10000) found")
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// StartReplica runs a replica of master, with serverArgs added to its
// command line, and waits until it is in sync; t.Cleanup stops it.
func StartReplica(t testing.TB, master *Server, serverArgs ...string) *Server {
	t.Helper()
	// The master's default waits 5 s for more replicas before syncing.
	if reply, err := command(master.Addr, "CONFIG SET repl-diskless-sync-delay 0"); err != nil || !strings.HasPrefix(reply, "+OK") {
		t.Fatalf("configuring the master: %q %v", reply, err)
	}
	host, port, _ := net.SplitHostPort(master.Addr)
	args := append([]string{"--replicaof", host, port}, replicationArgs...)
	r := startServer(t, freePort, append(args, serverArgs...)...)
	// The master counts the replica (ROLE, WAIT) once it is online there,
	// a little after the replica sees its link up.
	_, rport, _ := net.SplitHostPort(r.Addr)
	waitUntil(t, "replica "+r.Addr+" online at the master", func() bool {
		repl, err := command(master.Addr, "INFO replication")
		return err == nil && strings.Contains(repl, ",port="+rport+",state=online")
	})
	return r
}

// SentinelDeployment is a master with replicas watched by Sentinels.
type SentinelDeployment struct {
	// MasterName is the name the Sentinels monitor.
	MasterName string
	// Servers are the data nodes, the first master at start.
	Servers   []*Server
	Sentinels []*Server
	t         testing.TB
}

// StartSentinelDeployment runs one master, replicas replicas and sentinels
// Sentinels (quorum: a majority) with short failure detection. serverArgs
// are added to every data node's command line (any of them may be
// promoted).
func StartSentinelDeployment(t testing.TB, masterName string, replicas, sentinels int, serverArgs ...string) *SentinelDeployment {
	t.Helper()
	d := &SentinelDeployment{MasterName: masterName, t: t}
	master := StartServer(t, append(append([]string(nil), replicationArgs...), serverArgs...)...)
	d.Servers = append(d.Servers, master)
	host, port, _ := net.SplitHostPort(master.Addr)
	for range replicas {
		d.Servers = append(d.Servers, StartReplica(t, master, serverArgs...))
	}
	quorum := sentinels/2 + 1
	ms := SentinelDownAfter.Milliseconds()
	conf := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s %[4]d\n"+
		"sentinel down-after-milliseconds %[1]s %[5]d\n"+
		"sentinel failover-timeout %[1]s %[6]d\n"+
		"sentinel parallel-syncs %[1]s %[7]d\n",
		masterName, host, port, quorum, ms, SentinelFailoverTimeout.Milliseconds(), replicas)
	for range sentinels {
		d.Sentinels = append(d.Sentinels, startSentinel(t, master.bin, conf))
	}
	// Registered after the servers' Stop, so it runs first.
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range append(append([]*Server(nil), d.Servers...), d.Sentinels...) {
				t.Logf("log of %s:\n%s", s.Addr, tail(filepath.Join(s.dir, "redis.log")))
			}
		}
	})
	// A failover needs the Sentinels to know each other (they meet over the
	// master's hello channel, every 2 s) and the replicas.
	for _, s := range d.Sentinels {
		waitUntil(t, "sentinel "+s.Addr+" knows the deployment", func() bool {
			m, err := sentinelMaster(s.Addr, masterName)
			return err == nil && m["num-other-sentinels"] == strconv.Itoa(sentinels-1) && m["num-slaves"] == strconv.Itoa(replicas)
		})
	}
	return d
}

// SentinelAddrs are the Sentinels' addresses, as client seeds.
func (d *SentinelDeployment) SentinelAddrs() []string {
	out := make([]string, len(d.Sentinels))
	for i, s := range d.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// Master returns the server every Sentinel names as master.
func (d *SentinelDeployment) Master() *Server {
	d.t.Helper()
	addr := d.agreedMaster()
	for _, s := range d.Servers {
		if s.Addr == addr {
			return s
		}
	}
	d.t.Fatalf("the Sentinels do not agree on a master")
	return nil
}

// agreedMaster is the master address every Sentinel reports, or "".
func (d *SentinelDeployment) agreedMaster() string {
	var addr string
	for _, s := range d.Sentinels {
		a, err := sentinelMasterAddr(s.Addr, d.MasterName)
		if err != nil || (addr != "" && a != addr) {
			return ""
		}
		addr = a
	}
	return addr
}

// KillMaster kills the master's process and waits until every Sentinel names
// a new master that answers as one. The old master stays down.
func (d *SentinelDeployment) KillMaster() (promoted *Server) {
	d.t.Helper()
	old := d.Master()
	old.Stop()
	var addr string
	waitUntil(d.t, "a new master", func() bool {
		addr = d.agreedMaster()
		if addr == "" || addr == old.Addr {
			return false
		}
		return isMaster(addr)
	})
	return d.Master()
}

func startSentinel(t testing.TB, bin, conf string) *Server {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: dir, sentinelConf: path}
	return s.startOnFreePort(freePort, "redis sentinel")
}

func sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second})
}

func sentinelMaster(addr, name string) (map[string]string, error) {
	c := sentinelClient(addr)
	defer c.Close()
	return c.Master(context.Background(), name).Result()
}

func sentinelMasterAddr(addr, name string) (string, error) {
	c := sentinelClient(addr)
	defer c.Close()
	hp, err := c.GetMasterAddrByName(context.Background(), name).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("unexpected reply %v", hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// isMaster reports whether the server at addr answers ROLE as a master.
func isMaster(addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	role, err := c.Do(context.Background(), "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(topologyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", topologyTimeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
