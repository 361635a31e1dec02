package events

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// fast delivery settings for tests.
func testDelivery(t testing.TB, url string, sec Secret, q Queue) DeliveryConfig {
	return DeliveryConfig{URL: url, Secret: sec, Queue: q, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxAge: time.Hour}
}

func start(t testing.TB, cfg DeliveryConfig) *Deliverer {
	t.Helper()
	d, err := StartDelivery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

func redisQueue(t testing.TB, srv *redistest.Server, claimIdle time.Duration) (*RedisQueue, redis.UniversalClient) {
	t.Helper()
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	q, err := NewRedisQueue(c, RedisQueueOptions{Realm: "test", ClaimIdle: claimIdle, MaxDeadLetters: 5})
	if err != nil {
		t.Fatal(err)
	}
	return q, c
}

type queueMaker func(t *testing.T) Queue

func queues(t *testing.T) map[string]queueMaker {
	return map[string]queueMaker{
		"memory": func(t *testing.T) Queue { return NewMemoryQueue(5) },
		"redis": func(t *testing.T) Queue {
			q, _ := redisQueue(t, redistest.StartServer(t), time.Second)
			return q
		},
	}
}

func enqueueAll(t testing.TB, q Queue, evs ...Event) {
	t.Helper()
	for _, ev := range evs {
		if err := q.Enqueue(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// A receiver that is down for a while gets every event afterwards, in order
// per user; after dedupe each is applied once, every signature verifies.
func TestReceiverDownThenUp(t *testing.T) {
	for name, mk := range queues(t) {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t)
			rc.down.Store(true)
			_, sec := testSecret(t)
			q := mk(t)
			start(t, testDelivery(t, rc.srv.URL, sec, q))
			perUser := map[string]int{"alice": 20, "bob": 20, "carol": 20}
			for i := 1; i <= 20; i++ {
				for _, u := range []string{"alice", "bob", "carol"} {
					enqueueAll(t, q, seqEvent(u, i))
				}
			}
			time.Sleep(700 * time.Millisecond) // several failed attempts
			rc.down.Store(false)
			got := rc.waitApplied(t, 60)
			checkOrder(t, got, perUser)
			for _, r := range got {
				if r.Signature == "" || r.Timestamp == "" {
					t.Fatalf("event %s arrived unsigned", r.ID)
				}
			}
		})
	}
}

// Each attempt is signed afresh: same webhook-id, new timestamp.
func TestRetrySignsAfresh(t *testing.T) {
	rc := newReceiver(t)
	var fails atomic.Int32
	_, sec := testSecret(t)
	q := NewMemoryQueue(0)
	failTwice := func(*http.Request) int {
		if fails.Add(1) <= 2 {
			return 500
		}
		return 0
	}
	rc.fail.Store(&failTwice)
	cfg := testDelivery(t, rc.srv.URL, sec, q)
	cfg.InitialBackoff, cfg.MaxBackoff = 600*time.Millisecond, 600*time.Millisecond
	start(t, cfg)
	ev := seqEvent("u", 1)
	enqueueAll(t, q, ev)
	got := rc.waitApplied(t, 1)
	if got[0].ID != ev.ID {
		t.Fatalf("webhook-id %s, want %s", got[0].ID, ev.ID)
	}
	if want := sec.Sign(ev.ID, time.Unix(mustInt(t, got[0].Timestamp), 0), ev.Body); got[0].Signature != want {
		t.Fatalf("signature does not match the attempt's own timestamp")
	}
	if ts := mustInt(t, got[0].Timestamp); ts < ev.Created.Unix()+1 {
		t.Fatalf("the third attempt kept the first attempt's timestamp (%d, event created %d)", ts, ev.Created.Unix())
	}
}

// A user whose event keeps failing does not hold up other users; after
// max_age it is dead-lettered, counted, listed, and the user's later
// events flow.
func TestDeadLetterAndOtherUsersFlow(t *testing.T) {
	for name, mk := range queues(t) {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t)
			_, sec := testSecret(t)
			q := mk(t)
			poison := seqEvent("mallory", 1)
			// Each attempt of the poison is answered only once bob's
			// events are in, so it cannot reach max_age and unblock
			// mallory before them, however slow the machine.
			bobIn := make(chan struct{})
			go func() {
				for deadline := time.Now().Add(eventually); len(rc.applied()) < 5 && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				close(bobIn)
			}()
			refuse := func(r *http.Request) int {
				if r.Header.Get(HeaderID) == poison.ID {
					<-bobIn
					return 400
				}
				return 0
			}
			rc.fail.Store(&refuse)
			var dead atomic.Int32
			cfg := testDelivery(t, rc.srv.URL, sec, q)
			cfg.MaxAge = 1500 * time.Millisecond
			cfg.OnDead = func() { dead.Add(1) }
			start(t, cfg)
			enqueueAll(t, q, poison, seqEvent("mallory", 2), seqEvent("mallory", 3))
			for i := 1; i <= 5; i++ {
				enqueueAll(t, q, seqEvent("bob", i))
			}
			// bob's flow while mallory's first event is failing.
			got := rc.waitApplied(t, 5)
			checkOrder(t, got, map[string]int{"bob": 5})
			got = rc.waitApplied(t, 7)
			var mallory []int
			for _, r := range got {
				if r.UserID == "mallory" {
					mallory = append(mallory, r.Seq)
				}
			}
			if fmt.Sprint(mallory) != "[2 3]" {
				t.Fatalf("mallory's events after the dead letter: %v, want [2 3]", mallory)
			}
			if dead.Load() != 1 {
				t.Fatalf("%d dead letters counted, want 1", dead.Load())
			}
			dl, err := q.DeadLetters(context.Background(), 10)
			if err != nil || len(dl) != 1 || dl[0].ID != poison.ID || dl[0].UserID != "mallory" || dl[0].Attempts < 2 || dl[0].LastError == "" {
				t.Fatalf("dead letters %+v, %v", dl, err)
			}
		})
	}
}

func mustInt(t testing.TB, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Stop returns promptly even with an attempt hanging on the receiver, and
// the event stays queued for the next start.
func TestStopWithAttemptInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	_, sec := testSecret(t)
	q, _ := redisQueue(t, redistest.StartServer(t), time.Second)
	d, err := StartDelivery(testDelivery(t, hang.URL, sec, q))
	if err != nil {
		t.Fatal(err)
	}
	enqueueAll(t, q, seqEvent("u", 1))
	select {
	case <-arrived:
	case <-time.After(eventually):
		t.Fatal("the attempt never reached the receiver")
	}
	stopped := make(chan struct{})
	go func() { d.Stop(); close(stopped) }()
	// Well under AttemptTimeout (10 s), which a Stop that waited for the
	// attempt would take.
	select {
	case <-stopped:
	case <-time.After(AttemptTimeout / 2):
		t.Fatal("Stop hung behind an attempt in flight")
	}
	rc := newReceiver(t)
	start(t, testDelivery(t, rc.srv.URL, sec, q))
	checkOrder(t, rc.waitApplied(t, 1), map[string]int{"u": 1})
}
