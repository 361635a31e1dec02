package events

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// redisEventsACL is what the events queue adds to the gateway's Redis user
// (docs/scale.md's rule): docs/events.md shows it, this test proves it is
// enough.
const redisEventsACL = "+xadd +xrange +xreadgroup +xack +xdel +xautoclaim +xclaim +xpending +xgroup|create +xgroup|delconsumer +xinfo|consumers +hget +hset +hdel +lpush +ltrim +lrange +xlen +llen"

func TestRedisEventsACLIsEnough(t *testing.T) {
	docs, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(docs), redisEventsACL) {
		t.Errorf("docs/events.md does not show the tested ACL addition:\n%s", redisEventsACL)
	}
	srv := redistest.StartServer(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { admin.Close() })
	args := []any{"ACL", "SETUSER", "gateway", ">secret", "on", "resetkeys", "~acl:*", "-@all", "+hello", "+ping", "+evalsha", "+eval"}
	for _, f := range strings.Fields(redisEventsACL) {
		args = append(args, f)
	}
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	newQueue := func() *RedisQueue {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "gateway", Password: "secret"})
		t.Cleanup(func() { c.Close() })
		q, err := NewRedisQueue(c, RedisQueueOptions{KeyPrefix: "acl:", Realm: "acl", ClaimIdle: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	rc := newReceiver(t)
	rc.down.Store(true)
	_, sec := testSecret(t)
	// One deliverer holds the backlog and stops; another takes it over,
	// dead-letters one event and delivers the rest.
	q1 := newQueue()
	d1, err := StartDelivery(testDelivery(t, rc.srv.URL, sec, q1))
	if err != nil {
		t.Fatal(err)
	}
	poison := seqEvent("p", 1)
	enqueueAll(t, q1, poison, seqEvent("u", 1), seqEvent("u", 2))
	time.Sleep(1200 * time.Millisecond) // a Keep round too
	d1.Stop()
	refuse := func(r *http.Request) int {
		if r.Header.Get(HeaderID) == poison.ID {
			return 400
		}
		return 0
	}
	rc.fail.Store(&refuse)
	rc.down.Store(false)
	q2 := newQueue()
	cfg := testDelivery(t, rc.srv.URL, sec, q2)
	cfg.MaxAge = 2 * time.Second
	start(t, cfg)
	rc.waitApplied(t, 2)
	deadline := time.Now().Add(eventually)
	for {
		dl, err := q2.DeadLetters(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dl) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event was not dead-lettered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, err := q2.Backlog(ctx); err != nil || b != (Backlog{Dead: 1}) {
		t.Fatalf("Backlog = %+v, %v; want 1 dead letter and nothing pending", b, err)
	}
	if l, _ := admin.Do(ctx, "ACL", "LOG").Val().([]any); len(l) > 0 {
		t.Fatalf("redis denied the gateway's user: %v", l)
	}
}
