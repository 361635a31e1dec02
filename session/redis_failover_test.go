package session

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// Failover under load: two store instances share a real topology while
// workers sign in, look up and sign out; a master fails over. Required:
// no lookup serves a revoked session on the instance that revoked it, the
// other instance stops serving it, no acknowledged revocation comes back,
// no acknowledged session is lost (WaitReplicas 1), and writes work again
// after the failover. How long each of these takes is logged, not asserted:
// a starved CPU stretches every one of them (the promises are measured by
// the benchmarks, e.g. BenchmarkRevocationReachesOtherInstance).

const (
	// failoverRequestDeadline is the gateway's per-call store deadline.
	failoverRequestDeadline = 2 * time.Second
	// readerRecoveryBound: a store that only reads must find the new
	// master well before go-redis's own 10 s slot-map refresh would.
	readerRecoveryBound = 8 * time.Second
	failoverWorkers     = 4
	// loadBefore and loadAfter: how long the load runs around the failover.
	loadBefore = 700 * time.Millisecond
	loadAfter  = 1500 * time.Millisecond
)

type trackedSession struct {
	tok       string
	id        string
	createdAt time.Time // acknowledged
	revokedAt time.Time // acknowledged; zero if not revoked
	// signOutFailed: a sign-out answered an error, so it may or may not
	// have taken effect.
	signOutFailed bool
}

type writeResult struct {
	op         string
	start, end time.Time
	err        error
}

type failoverLoad struct {
	t      *testing.T
	stores [2]*RedisStore
	logs   [2]*revocationLog

	mu       sync.Mutex
	sessions []*trackedSession
	writes   []writeResult
	lookups  atomic.Int64
	stop     atomic.Bool
	// maxReach is the longest a revocation took to reach the other
	// instance.
	maxReach atomic.Int64
}

func newFailoverLoad(t *testing.T, cfg RedisConfig) *failoverLoad {
	l := &failoverLoad{t: t}
	cfg.KeyPrefix = uniquePrefix()
	cfg.WaitReplicas = 1
	for i := range l.stores {
		s, err := NewRedisStore(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		l.stores[i] = s
		l.logs[i] = watchRevocations(s)
		waitFor(t, eventually, "revocation subscription", s.live.Load)
	}
	return l
}

func (l *failoverLoad) write(op string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), failoverRequestDeadline)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	l.mu.Lock()
	l.writes = append(l.writes, writeResult{op, start, time.Now(), err})
	l.mu.Unlock()
	return err
}

func (l *failoverLoad) lookup(i int, tok string) (*Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), failoverRequestDeadline)
	defer cancel()
	l.lookups.Add(1)
	return l.stores[i].Lookup(ctx, tok)
}

// worker signs a user in on one instance, looks the session up on both and
// signs out half of the sessions, checking that a revoked session is
// refused at once where it was revoked and then elsewhere.
func (l *failoverLoad) worker(n int) {
	for i := 0; !l.stop.Load(); i++ {
		here, there := i%2, 1-i%2
		var tok string
		var sess *Session
		st := l.stores[here]
		err := l.write("sign-in", func(ctx context.Context) error {
			userID := fmt.Sprintf("user-%d-%d", n, i)
			if i%4 == 0 {
				// A provider sign-in: state, account lookup, new user and
				// account, then the session.
				var err error
				if userID, err = providerSignIn(ctx, st, fmt.Sprintf("acct-%d-%d", n, i)); err != nil {
					return err
				}
			}
			var err error
			tok, sess, err = st.Create(ctx, NewSession{UserID: userID})
			return err
		})
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ts := &trackedSession{tok: tok, id: sess.ID, createdAt: time.Now()}
		l.mu.Lock()
		l.sessions = append(l.sessions, ts)
		l.mu.Unlock()
		_, _ = l.lookup(there, tok) // caches it there
		if rand.IntN(2) == 0 {
			continue
		}
		if l.write("sign-out", func(ctx context.Context) error { return l.stores[here].Delete(ctx, tok) }) != nil {
			l.mu.Lock()
			ts.signOutFailed = true
			l.mu.Unlock()
			continue
		}
		revokedAt := time.Now()
		l.mu.Lock()
		ts.revokedAt = revokedAt
		l.mu.Unlock()
		if got, err := l.lookup(here, tok); err == nil {
			l.t.Errorf("session %s served by the instance that revoked it, right after: %v", got.ID, got)
		}
		for {
			_, err := l.lookup(there, tok)
			if err != nil {
				reach := time.Since(revokedAt)
				if int64(reach) > l.maxReach.Load() {
					l.maxReach.Store(int64(reach))
				}
				break
			}
			if time.Since(revokedAt) > eventually {
				l.t.Errorf("the other instance still serves session %s %v after its revocation", sess.ID, time.Since(revokedAt))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func providerSignIn(ctx context.Context, s *RedisStore, account string) (string, error) {
	state := "state-" + account
	if err := s.PutOnce(ctx, state, []byte("flow"), time.Minute); err != nil {
		return "", err
	}
	if _, err := s.TakeOnce(ctx, state); err != nil {
		return "", err
	}
	if _, err := s.RateHit(ctx, "ip-"+account, 100, time.Minute); err != nil {
		return "", err
	}
	if _, err := s.GetAccount(ctx, "github", account); !errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("new account: %w", err)
	}
	u, err := s.CreateUser(ctx, NewUser{Profile: Profile{Email: account + "@example.com", EmailVerified: true}})
	if err != nil {
		return "", err
	}
	if err := s.CreateAccount(ctx, Account{Provider: "github", ProviderAccountID: account, UserID: u.ID}); err != nil {
		return "", err
	}
	return u.ID, nil
}

// run keeps the load up around failover, which returns once the new
// master is known; it returns when that was.
func (l *failoverLoad) run(name string, failover func()) {
	var wg sync.WaitGroup
	for n := range failoverWorkers {
		wg.Add(1)
		go func() { defer wg.Done(); l.worker(n) }()
	}
	time.Sleep(loadBefore)
	trigger := time.Now()
	failover()
	known := time.Now()
	// Both subscriptions come back. Until then the caches are bypassed, so
	// a revocation cannot be missed meanwhile.
	waitFor(l.t, eventually, "both revocation subscriptions live after the failover", func() bool {
		return l.stores[0].live.Load() && l.stores[1].live.Load()
	})
	l.t.Logf("%s: subscriptions live %v after the new master was known", name, time.Since(known).Round(time.Millisecond))
	time.Sleep(loadAfter)
	l.stop.Store(true)
	wg.Wait()
	l.check(name, trigger, known)
}

func (l *failoverLoad) check(name string, trigger, known time.Time) {
	t := l.t
	var failed, total int
	var lastFailure time.Time
	var maxLatency time.Duration
	for _, w := range l.writes {
		if w.start.Before(trigger) && w.end.Before(trigger) {
			if w.err != nil {
				t.Errorf("%s failed before the failover: %v", w.op, w.err)
			}
			continue
		}
		total++
		maxLatency = max(maxLatency, w.end.Sub(w.start))
		if w.err == nil {
			continue
		}
		failed++
		lastFailure = w.end
		late := ""
		if !w.start.Before(known) {
			// The client learns the new master some time after the test
			// does; on a starved CPU that can outlast a 2 s deadline.
			late = fmt.Sprintf(" (started %v after the new master was known)", w.start.Sub(known).Round(time.Millisecond))
		}
		t.Logf("%s failed %v after the trigger%s: %v", w.op, w.end.Sub(trigger).Round(time.Millisecond), late, w.err)
	}
	recovery := time.Duration(0)
	if failed > 0 {
		recovery = lastFailure.Sub(trigger)
	}
	var lost, back int
	for _, s := range l.sessions {
		for i := range l.stores {
			got, err := l.lookup(i, s.tok)
			switch {
			case err != nil && !errors.Is(err, ErrNotFound):
				t.Errorf("lookup after the failover: %v", err)
			case !s.revokedAt.IsZero() && err == nil:
				back++
				t.Errorf("revocation lost: session %s revoked %v before the failover is served again", got.ID, trigger.Sub(s.revokedAt))
			case s.revokedAt.IsZero() && !s.signOutFailed && errors.Is(err, ErrNotFound):
				lost++
				t.Errorf("session created %v before the failover was lost", trigger.Sub(s.createdAt))
			}
		}
	}
	t.Logf("%s: %d writes from the failover on, %d failed (last %v after the trigger, new master known after %v), max write latency %v; %d lookups; %d sessions checked: %d lost, %d revocations lost; revocations reached the other instance within %v",
		name, total, failed, recovery.Round(time.Millisecond), known.Sub(trigger).Round(time.Millisecond), maxLatency.Round(time.Millisecond),
		l.lookups.Load(), len(l.sessions), lost, back, time.Duration(l.maxReach.Load()).Round(time.Millisecond))
	// After the failover a revocation on one instance still reaches the
	// other's hooks over pub/sub.
	l.revocationReachesOther(known)
}

func (l *failoverLoad) revocationReachesOther(known time.Time) {
	t := l.t
	// Each call gets the request deadline, tried until the client has
	// caught up with the new master.
	var tok string
	var sess *Session
	l.eventually("sign-in after the failover", func(ctx context.Context) (err error) {
		tok, sess, err = l.stores[0].Create(ctx, NewSession{UserID: "after-failover"})
		return err
	})
	l.eventually("lookup on the other instance after the failover", func(ctx context.Context) error {
		_, err := l.stores[1].Lookup(ctx, tok)
		return err
	})
	l.eventually("sign-out after the failover", func(ctx context.Context) error { return l.stores[0].Delete(ctx, tok) })
	start := time.Now()
	waitFor(t, eventually, "the other instance's OnRevoke hook after the failover", func() bool {
		return l.logs[1].has(sess.ID)
	})
	t.Logf("revocation reached the other instance's hooks %v after sign-out, %v after the new master was known",
		time.Since(start).Round(time.Millisecond), time.Since(known).Round(time.Millisecond))
}

// eventually runs f with the request deadline until it succeeds, for at
// most eventually.
func (l *failoverLoad) eventually(what string, f func(ctx context.Context) error) {
	l.t.Helper()
	var err error
	waitFor(l.t, eventually, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), failoverRequestDeadline)
		defer cancel()
		err = f(ctx)
		return err == nil
	})
	if err != nil {
		l.t.Fatalf("%s: %v", what, err)
	}
}

func TestRedisClusterFailoverUnderLoad(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t, 3, 1)
	cfg := RedisConfig{Cluster: true, Addrs: c.Addrs()}
	t.Run("CLUSTER FAILOVER", func(t *testing.T) {
		l := newFailoverLoad(t, cfg)
		// The master of the revocation channel's slot holds both stores'
		// subscriptions.
		m := c.MasterFor(l.stores[0].channel)
		l.run("cluster manual failover", func() { c.Failover(m) })
	})
	t.Run("master killed", func(t *testing.T) {
		l := newFailoverLoad(t, cfg)
		m := c.MasterFor(l.stores[0].channel)
		// A store that only reads: nothing but its lookups tells it the
		// master is gone.
		rcfg := cfg
		rcfg.KeyPrefix, rcfg.CacheSize = l.stores[0].prefix, -1
		reader, err := NewRedisStore(rcfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		ctx := context.Background()
		var tok string
		for i := 0; tok == ""; i++ {
			tk, _, err := l.stores[0].Create(ctx, NewSession{UserID: fmt.Sprintf("reader-%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			if p, _ := parseToken(tk); c.MasterFor(l.stores[0].sessionKey(p.userTag, p.sessionID)) == m {
				tok = tk
			}
		}
		if _, err := reader.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
		readsBack := make(chan time.Duration, 1)
		l.run("cluster master killed", func() {
			c.KillMaster(m)
			known := time.Now()
			go func() {
				for time.Since(known) < eventually {
					lctx, cancel := context.WithTimeout(ctx, failoverRequestDeadline)
					_, err := reader.Lookup(lctx, tok)
					cancel()
					if err == nil {
						readsBack <- time.Since(known)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				readsBack <- -1
			}()
		})
		// Its failing lookups make the client reload the slot map, so it
		// finds the new master well before go-redis's periodic 10 s refresh.
		switch d := <-readsBack; {
		case d < 0:
			t.Errorf("a store that only reads never found the session on the new master within %v", eventually)
		case d > readerRecoveryBound:
			t.Errorf("a store that only reads found the session on the new master only after %v: about when go-redis refreshes its slot map by itself; want sooner", d)
		default:
			t.Logf("cluster master killed: a store that only reads finds sessions again %v after the new master was known", d.Round(time.Millisecond))
		}
		m.Restart() // as a replica of the promoted node
		c.WaitHealthy()
	})
}

func TestRedisSentinelFailoverUnderLoad(t *testing.T) {
	// As in e2e's TestSentinelFailoverUnderLoad: a new master that a
	// starved Sentinel fails over again must not have taken writes alone.
	d := redistest.StartSentinelDeployment(t, "mymaster", 2, 3, "--min-replicas-to-write", "1")
	l := newFailoverLoad(t, RedisConfig{MasterName: d.MasterName, Addrs: d.SentinelAddrs()})
	l.run("sentinel master killed", func() { d.KillMaster() })
}

// TestRedisRevocationsWaitForReplicas: a revocation returns only once the
// replica has it (WAIT on the master's connection); a new session waits
// only with WaitReplicas; without replicas nothing waits.
func TestRedisRevocationsWaitForReplicas(t *testing.T) {
	master := redistest.StartServer(t)
	inspect := newTestClient(t, master.Addr, false)
	ctx := context.Background()
	waits := func() int { return commandCalls(t, inspect)["wait"] }
	sessionOnReplica := func(r *redistest.Server, s *RedisStore, tok string) bool {
		p, _ := parseToken(tok)
		n, err := newTestClient(t, r.Addr, false).Exists(ctx, s.sessionKey(p.userTag, p.sessionID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	newStore := func(waitReplicas int) *RedisStore {
		s, err := NewRedisStore(RedisConfig{URL: master.URL(), KeyPrefix: uniquePrefix(), WaitReplicas: waitReplicas}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	t.Run("no replicas", func(t *testing.T) {
		s := newStore(1)
		before := waits()
		tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if n := waits() - before; n != 0 {
			t.Fatalf("%d WAITs on a master without replicas; want none", n)
		}
	})

	replica := redistest.StartReplica(t, master)
	t.Run("revocation waits", func(t *testing.T) {
		s := newStore(0)
		before := waits()
		tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if n := waits() - before; n != 0 {
			t.Fatalf("sign-in without wait_replicas ran %d WAITs; want none", n)
		}
		if err := s.Delete(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if sessionOnReplica(replica, s, tok) {
			t.Fatal("sign-out returned before the replica had it")
		}
		if n := waits() - before; n != 1 {
			t.Fatalf("sign-out ran %d WAITs; want 1", n)
		}
	})
	t.Run("wait_replicas 1", func(t *testing.T) {
		s := newStore(1)
		before := waits()
		tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if !sessionOnReplica(replica, s, tok) {
			t.Fatal("sign-in returned before the replica had the session")
		}
		if n := waits() - before; n != 1 {
			t.Fatalf("sign-in with wait_replicas 1 ran %d WAITs; want 1", n)
		}
	})
}

// TestRedisWritesWaitOutMinReplicasToWrite: a master configured with
// min-replicas-to-write refuses writes (NOREPLICAS) while too few replicas
// are connected, as right after a failover; a write is retried until one is
// back, and fails as unavailable only when its deadline ends first.
func TestRedisWritesWaitOutMinReplicasToWrite(t *testing.T) {
	master := redistest.StartServer(t, "--min-replicas-to-write", "1")
	prefix := uniquePrefix()
	s, err := NewRedisStore(RedisConfig{URL: master.URL(), KeyPrefix: prefix, WaitReplicas: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, _, err := s.Create(short, NewSession{UserID: "u"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("sign-in with no replica for min-replicas-to-write: %v; want ErrUnavailable", err)
	}

	// Generous deadlines: the replica may take seconds to sync on a busy
	// machine, and what is checked is that the writes wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	type created struct {
		tok string
		err error
	}
	done := make(chan created, 1)
	go func() {
		tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
		done <- created{tok, err}
	}()
	replica := redistest.StartReplica(t, master)
	c := <-done
	if c.err != nil {
		t.Fatalf("sign-in while the replica connected: %v; want it to wait for the replica", c.err)
	}
	if _, err := s.Lookup(ctx, c.tok); err != nil {
		t.Fatalf("the session signed in: %v", err)
	}

	replica.Stop()
	inspect := newTestClient(t, master.Addr, false)
	waitFor(t, eventually, "the master to see its replica gone", func() bool {
		info, err := inspect.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:0")
	})
	// A lookup due to write the session's last use still finds it.
	later, err := NewRedisStore(RedisConfig{URL: master.URL(), KeyPrefix: prefix},
		Options{Now: func() time.Time { return time.Now().Add(2 * DefaultTouchInterval) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = later.Close() })
	if _, err := later.Lookup(ctx, c.tok); err != nil {
		t.Fatalf("a lookup due to touch the session while the master refuses writes: %v; want the session", err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- s.Delete(ctx, c.tok) }()
	replica.Restart()
	if err := <-deleted; err != nil {
		t.Fatalf("sign-out while the replica came back: %v; want it to wait for the replica", err)
	}
	if _, err := s.Lookup(ctx, c.tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the session signed out: %v; want ErrNotFound", err)
	}
}

// TestRedisClosedStoreWritesFailFast: the failover retries stop at once
// when the store itself was closed (its client answers ErrClosed for good).
func TestRedisClosedStoreWritesFailFast(t *testing.T) {
	srv := redistest.StartServer(t)
	s, err := NewRedisStore(RedisConfig{URL: srv.URL(), KeyPrefix: uniquePrefix()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Create(context.Background(), NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A deadline of minutes: retrying would use it up.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := s.Delete(ctx, tok); !IsUnavailable(err) {
		t.Fatalf("Delete on a closed store: %v; want unavailable", err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Fatalf("Delete on a closed store took %v; want no retries", took)
	}
}
