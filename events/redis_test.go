package events

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

func interleaved(users []string, n int) []Event {
	var evs []Event
	for i := 1; i <= n; i++ {
		for _, u := range users {
			evs = append(evs, seqEvent(u, i))
		}
	}
	return evs
}

func perUser(users []string, n int) map[string]int {
	m := map[string]int{}
	for _, u := range users {
		m[u] = n
	}
	return m
}

// Stopping the delivery loop in the middle of a backlog (a Caddy restart)
// loses nothing: the next start takes the stopped consumer's entries over.
func TestRedisRestartMidBacklog(t *testing.T) {
	srv := redistest.StartServer(t)
	rc := newReceiver(t)
	rc.down.Store(true)
	_, sec := testSecret(t)
	users := []string{"a", "b", "c"}
	q1, _ := redisQueue(t, srv, time.Second)
	d1, err := StartDelivery(testDelivery(t, rc.srv.URL, sec, q1))
	if err != nil {
		t.Fatal(err)
	}
	enqueueAll(t, q1, interleaved(users, 10)...)
	time.Sleep(500 * time.Millisecond) // d1 holds the backlog, failing
	d1.Stop()
	rc.down.Store(false)

	q2, _ := redisQueue(t, srv, time.Second)
	start(t, testDelivery(t, rc.srv.URL, sec, q2))
	got := rc.waitApplied(t, 30)
	checkOrder(t, got, perUser(users, 10))
}

// Two instances share the queue: each user's events stay in order, and
// when one is killed mid-backlog the other takes its pending events over
// (XAUTOCLAIM).
func TestRedisTwoInstancesTakeover(t *testing.T) {
	srv := redistest.StartServer(t)
	rc := newReceiver(t)
	rc.down.Store(true)
	_, sec := testSecret(t)
	users := []string{"a", "b", "c", "d"}
	qa, _ := redisQueue(t, srv, time.Second)
	qb, _ := redisQueue(t, srv, time.Second)
	da, err := StartDelivery(testDelivery(t, rc.srv.URL, sec, qa))
	if err != nil {
		t.Fatal(err)
	}
	start(t, testDelivery(t, rc.srv.URL, sec, qb))
	enqueueAll(t, qa, interleaved(users, 15)...)
	time.Sleep(600 * time.Millisecond)
	da.Stop() // killed: its entries stay pending under its name
	rc.down.Store(false)
	got := rc.waitApplied(t, 60)
	checkOrder(t, got, perUser(users, 15))
}

// With both instances live and the receiver up, per-user order holds
// across instances.
func TestRedisTwoInstancesOrder(t *testing.T) {
	srv := redistest.StartServer(t)
	rc := newReceiver(t)
	_, sec := testSecret(t)
	users := []string{"a", "b", "c", "d", "e"}
	qa, _ := redisQueue(t, srv, time.Second)
	qb, _ := redisQueue(t, srv, time.Second)
	start(t, testDelivery(t, rc.srv.URL, sec, qa))
	start(t, testDelivery(t, rc.srv.URL, sec, qb))
	enqueueAll(t, qa, interleaved(users, 20)...)
	got := rc.waitApplied(t, 100)
	checkOrder(t, got, perUser(users, 20))
	// Delivered entries leave the stream; the order hash empties.
	stream, order, _ := qa.Keys()
	c := qa.client
	deadline := time.Now().Add(eventually)
	for time.Now().Before(deadline) {
		n, _ := c.XLen(context.Background(), stream).Result()
		h, _ := c.HLen(context.Background(), order).Result()
		if n == 0 && h == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("delivered entries stayed in the stream or the order hash")
}

// On Redis Cluster the queue's keys share a slot: scripts run.
func TestRedisClusterQueue(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cl.Addr}})
	t.Cleanup(func() { c.Close() })
	q, err := NewRedisQueue(c, RedisQueueOptions{Realm: "cluster", ClaimIdle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t)
	_, sec := testSecret(t)
	start(t, testDelivery(t, rc.srv.URL, sec, q))
	users := []string{"a", "b"}
	enqueueAll(t, q, interleaved(users, 5)...)
	got := rc.waitApplied(t, 10)
	checkOrder(t, got, perUser(users, 5))
}

// The stream is bounded: past MaxLen the oldest entries are trimmed, and a
// user whose earlier event was trimmed is not stuck behind it.
func TestRedisTrimmedHeadDoesNotBlock(t *testing.T) {
	srv := redistest.StartServer(t)
	q, c := redisQueue(t, srv, time.Second)
	stream, _, _ := q.Keys()
	enqueueAll(t, q, seqEvent("u", 1), seqEvent("u", 2))
	// Trim the first away, as MAXLEN would.
	msgs, _ := c.XRange(context.Background(), stream, "-", "+").Result()
	c.XDel(context.Background(), stream, msgs[0].ID)
	second := Entry{Ref: msgs[1].ID, Event: Event{Key: "u"}}
	ok, err := q.Head(context.Background(), second)
	if err != nil || !ok {
		t.Fatalf("Head after the first was trimmed = %v, %v; want true", ok, err)
	}
}
