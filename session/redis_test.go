package session

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// Short timeouts keep the store-down tests quick.
const testRedisTimeout = 500 * time.Millisecond

var prefixCounter atomic.Int64

// uniquePrefix gives each store its own keys on a shared server.
func uniquePrefix() string {
	return fmt.Sprintf("test%d:", prefixCounter.Add(1))
}

func newTestClient(t testing.TB, addr string, cluster bool) redis.UniversalClient {
	t.Helper()
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         []string{addr},
		IsClusterMode: cluster,
		DialTimeout:   testRedisTimeout,
		ReadTimeout:   testRedisTimeout,
		WriteTimeout:  testRedisTimeout,
		MaxRetries:    1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clusterClient connects to a multi-node Cluster through all its nodes.
func clusterClient(t testing.TB, c *redistest.Cluster) redis.UniversalClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        c.Addrs(),
		DialTimeout:  testRedisTimeout,
		ReadTimeout:  testRedisTimeout,
		WriteTimeout: testRedisTimeout,
	})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// sentinelClient connects to the master of a Sentinel deployment.
func sentinelClient(t testing.TB, d *redistest.SentinelDeployment) redis.UniversalClient {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    d.MasterName,
		SentinelAddrs: d.SentinelAddrs(),
		DialTimeout:   testRedisTimeout,
		ReadTimeout:   testRedisTimeout,
		WriteTimeout:  testRedisTimeout,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newTestRedisStore builds a store on its own client; cacheSize < 0 disables
// the cache. With the cache on it waits for the revocation subscription, so
// that lookups are cached from the start.
func newTestRedisStore(t testing.TB, addr string, cluster bool, prefix string, cacheSize int, opts Options) *RedisStore {
	t.Helper()
	return newTestRedisStoreOn(t, newTestClient(t, addr, cluster), prefix, cacheSize, opts)
}

func newTestRedisStoreOn(t testing.TB, client redis.UniversalClient, prefix string, cacheSize int, opts Options) *RedisStore {
	t.Helper()
	s, err := NewRedisStoreFromClient(client, RedisConfig{KeyPrefix: prefix, CacheSize: cacheSize}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if cacheSize >= 0 {
		waitFor(t, eventually, "revocation subscription", s.live.Load)
	}
	return s
}

// dumpRedis returns every key under prefix and its value(s), on every
// master of a Cluster.
func dumpRedis(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	scan := func(node redis.Cmdable) error {
		iter := node.Scan(ctx, 0, prefix+"*", 0).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(node)
		})
	} else {
		err = scan(c)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, key := range keys {
		out = append(out, key)
		switch typ := c.Type(ctx, key).Val(); typ {
		case "string":
			out = append(out, c.Get(ctx, key).Val())
		case "zset":
			out = append(out, c.ZRange(ctx, key, 0, -1).Val()...)
		case "hash":
			for f, v := range c.HGetAll(ctx, key).Val() {
				out = append(out, f, v)
			}
		default:
			t.Fatalf("unexpected key type %s", typ)
		}
	}
	return out
}

func redisBackend(addr string, cluster bool, cacheSize int) conformanceBackend {
	return func(t *testing.T, opts Options) (Store, func() []string) {
		prefix := uniquePrefix()
		s := newTestRedisStore(t, addr, cluster, prefix, cacheSize, opts)
		inspect := newTestClient(t, addr, cluster)
		return s, func() []string { return dumpRedis(t, inspect, prefix) }
	}
}

// topologyBackend runs each store on its own client from newClient.
func topologyBackend(newClient func(testing.TB) redis.UniversalClient, cacheSize int) conformanceBackend {
	return func(t *testing.T, opts Options) (Store, func() []string) {
		prefix := uniquePrefix()
		s := newTestRedisStoreOn(t, newClient(t), prefix, cacheSize, opts)
		inspect := newClient(t)
		return s, func() []string { return dumpRedis(t, inspect, prefix) }
	}
}

func TestRedisConformance(t *testing.T) {
	srv := redistest.StartServer(t)
	t.Run("no cache", func(t *testing.T) { runConformance(t, redisBackend(srv.Addr, false, -1)) })
	t.Run("cache", func(t *testing.T) { runConformance(t, redisBackend(srv.Addr, false, 0)) })
}

// TestRedisClusterConformance runs the suites on a Cluster of 3 masters
// with a replica each, whose nodes refuse any script or command whose keys
// span hash slots, and whose users and sessions spread over the masters.
func TestRedisClusterConformance(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t, 3, 1)
	backend := topologyBackend(func(t testing.TB) redis.UniversalClient { return clusterClient(t, c) }, 0)
	t.Run("sessions", func(t *testing.T) { runConformance(t, backend) })
	t.Run("users", func(t *testing.T) { runUserConformance(t, backend) })
	t.Run("claims", func(t *testing.T) { runClaimsConformance(t, backend) })
}

// TestRedisSentinelConformance runs the suites through Sentinel on a master
// with 2 replicas watched by 3 Sentinels, and a store configured the way
// users configure one.
func TestRedisSentinelConformance(t *testing.T) {
	d := redistest.StartSentinelDeployment(t, "mymaster", 2, 3)
	backend := topologyBackend(func(t testing.TB) redis.UniversalClient { return sentinelClient(t, d) }, 0)
	t.Run("sessions", func(t *testing.T) { runConformance(t, backend) })
	t.Run("users", func(t *testing.T) { runUserConformance(t, backend) })
	t.Run("from config", func(t *testing.T) {
		s, err := NewRedisStore(RedisConfig{MasterName: d.MasterName, Addrs: d.SentinelAddrs(), KeyPrefix: "fromconfig:"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		tok, created, err := s.Create(ctx, NewSession{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Lookup(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		assertSession(t, "Lookup via Sentinel", got, created)
		master := newTestClient(t, d.Master().Addr, false)
		if n := len(master.Keys(ctx, "fromconfig:*").Val()); n != 2 {
			t.Fatalf("master holds %d keys; want the session and its index", n)
		}
	})
}

func TestRedisKeysOfOneUserShareAHashTag(t *testing.T) {
	srv := redistest.StartServer(t)
	prefix := uniquePrefix()
	s := newTestRedisStore(t, srv.Addr, false, prefix, -1, Options{})
	ctx := context.Background()
	for range 3 {
		if _, _, err := s.Create(ctx, NewSession{UserID: "user-42"}); err != nil {
			t.Fatal(err)
		}
	}
	keys := newTestClient(t, srv.Addr, false).Keys(ctx, prefix+"*").Val()
	if len(keys) != 4 {
		t.Fatalf("got keys %v; want 3 sessions and 1 index", keys)
	}
	want := "{" + userTag("user-42") + "}"
	for _, k := range keys {
		open, end := strings.IndexByte(k, '{'), strings.IndexByte(k, '}')
		if open < 0 || end < open || k[open:end+1] != want {
			t.Fatalf("key %q does not carry the user's hash tag %s", k, want)
		}
	}
}

func TestRedisTTLFollowsTheEarlierExpiry(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), -1, Options{
		SessionTTL: 3 * time.Hour, IdleTTL: 2 * time.Hour, TouchInterval: time.Minute, Now: clock.Now,
	})
	inspect := newTestClient(t, srv.Addr, false)
	ctx := context.Background()
	tok, sess, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parseToken(tok)
	key := s.sessionKey(p.userTag, sess.ID)
	assertTTL := func(want time.Duration) {
		t.Helper()
		got := inspect.PTTL(ctx, key).Val()
		// Real time passes between the write and PTTL.
		if got > want || got < want-5*time.Second {
			t.Fatalf("PTTL = %v; want about %v", got, want)
		}
	}
	assertTTL(2 * time.Hour) // idle expiry comes first
	clock.Advance(90 * time.Minute)
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	assertTTL(90 * time.Minute) // now the absolute expiry comes first
	index := inspect.PTTL(ctx, s.indexKey(userTag("u"))).Val()
	if index < 3*time.Hour-5*time.Second || index > 3*time.Hour {
		t.Fatalf("index PTTL = %v; want about the session TTL, 3h", index)
	}
}

// TestRedisLookupRoundTrips counts commands on the server: a lookup is one
// script call, and last use is written once per touch interval.
func TestRedisLookupRoundTrips(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), -1, Options{Now: clock.Now})
	inspect := newTestClient(t, srv.Addr, false)
	ctx := context.Background()
	tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, tok); err != nil { // loads the script
		t.Fatal(err)
	}
	if err := inspect.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const lookups = 20
	for range lookups {
		clock.Advance(time.Second)
		if _, err := s.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	// Commands a script runs are counted too: get (and setrange, pexpire
	// when it touches).
	stats := commandCalls(t, inspect)
	if stats["evalsha"] != lookups || stats["eval"] != 0 || stats["get"] != lookups {
		t.Errorf("%d lookups ran %v; want one evalsha each, nothing else but the script's get", lookups, stats)
	}
	if stats["setrange"] != 0 {
		t.Errorf("lookups within the touch interval wrote last use %d times; want 0", stats["setrange"])
	}
	clock.Advance(DefaultTouchInterval)
	for range 5 {
		if _, err := s.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if got := commandCalls(t, inspect)["setrange"]; got != 1 {
		t.Errorf("setrange ran %d times after the interval passed; want 1", got)
	}
}

// commandCalls parses INFO commandstats into command -> calls.
func commandCalls(t testing.TB, c redis.UniversalClient) map[string]int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.Atoi(calls)
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// TestRedisMemoryUsagePerSession measures MEMORY USAGE of realistic
// sessions, index entries included, with one and with two sessions per user.
func TestRedisMemoryUsagePerSession(t *testing.T) {
	srv := redistest.StartServer(t)
	for _, perUser := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d per user", perUser), func(t *testing.T) {
			per := measureSessionMemory(t, srv.Addr, 1000, perUser)
			if per > 400 {
				t.Errorf("%d bytes per session; the budget is 400", per)
			}
		})
	}
}

// measureSessionMemory creates sessions under a fresh prefix and returns the
// MEMORY USAGE of all its keys divided by the number of sessions.
func measureSessionMemory(t testing.TB, addr string, sessions, perUser int) int64 {
	prefix := "convex_auth" + strconv.Itoa(int(prefixCounter.Add(1))) + ":"
	s := newTestRedisStore(t, addr, false, prefix, -1, Options{})
	inspect := newTestClient(t, addr, false)
	ctx := context.Background()
	for i := range sessions {
		_, _, err := s.Create(ctx, NewSession{
			UserID:   fmt.Sprintf("k57%029d", i/perUser), // Convex-style 32-char ID
			Provider: "github",
			Profile: Profile{
				Email:         fmt.Sprintf("someone.%d@example.com", i),
				EmailVerified: true,
				Name:          "Someone Withaname",
				Picture:       fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", 10000000+i),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var sessionKeys, indexKeys int64
	iter := inspect.Scan(ctx, 0, prefix+"*", 0).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		n, err := inspect.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(key, "}:s:") {
			sessionKeys += n
		} else {
			indexKeys += n
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	n := int64(sessions)
	per := (sessionKeys + indexKeys) / n
	t.Logf("MEMORY USAGE: %d bytes per session (session key %d + index %d) over %d sessions, %d per user",
		per, sessionKeys/n, indexKeys/n, sessions, perUser)
	return per
}

// TestRedisRevocationReachesOtherInstances: B serves a session from its
// cache; A revokes it; B stops serving it and its hook runs (the clock is
// frozen, so only the revocation message can drop B's entry). That this
// takes well under a second is measured by
// BenchmarkRevocationReachesOtherInstance.
func TestRedisRevocationReachesOtherInstances(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock() // frozen: B's cache entry never ages out on its own
	opts := Options{Now: clock.Now}
	prefix := uniquePrefix()
	a := newTestRedisStore(t, srv.Addr, false, prefix, 0, opts)
	b := newTestRedisStore(t, srv.Addr, false, prefix, 0, opts)
	bLog := watchRevocations(b)
	ctx := context.Background()

	revokeAndWait := func(t *testing.T, name string, revoke func(tok string, sess *Session) error) {
		tok, sess, err := a.Create(ctx, NewSession{UserID: "u-" + name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if get1(b.cache, sess.ID, clock.Now(), b.opts) == nil {
			t.Fatal("B did not cache the lookup")
		}
		if err := revoke(tok, sess); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, eventually, "B forgets the revoked session", func() bool {
			_, err := b.Lookup(ctx, tok)
			if err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			return errors.Is(err, ErrNotFound)
		})
		t.Logf("B forgot the revoked session after %v", time.Since(start).Round(time.Microsecond))
		if !bLog.has(sess.ID) {
			t.Error("B's OnRevoke hook was not called")
		}
	}
	t.Run("delete", func(t *testing.T) {
		revokeAndWait(t, "delete", func(tok string, _ *Session) error { return a.Delete(ctx, tok) })
	})
	t.Run("delete by id", func(t *testing.T) {
		revokeAndWait(t, "byid", func(_ string, s *Session) error { return a.DeleteByID(ctx, s.UserID, s.ID) })
	})
	t.Run("delete user", func(t *testing.T) {
		revokeAndWait(t, "user", func(_ string, s *Session) error {
			_, err := a.DeleteUser(ctx, s.UserID, "")
			return err
		})
	})
	// A re-authentication reaches B's cache the same way: B serves the
	// session's new authentication within a second, and its OnRevoke hooks
	// (the token cache) hear of it.
	t.Run("reauthenticate", func(t *testing.T) {
		tok, sess, err := a.Create(ctx, NewSession{UserID: "u-reauth"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
		at := clock.Now().Add(time.Second)
		if err := a.Reauthenticate(ctx, sess.UserID, sess.ID, at, []string{"pwd"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, eventually, "B serves the new authentication", func() bool {
			got, err := b.Lookup(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			return got.AuthTime.Equal(at)
		})
		if !bLog.has(sess.ID) {
			t.Error("B's OnRevoke hook was not called")
		}
	})
	// A profile set through A replaces what B's cache holds of the session,
	// and B's hooks (its token cache) hear of it.
	t.Run("set profile", func(t *testing.T) {
		tok, sess, err := a.Create(ctx, NewSession{UserID: "u-renamed", Profile: testProfile()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if get1(b.cache, sess.ID, clock.Now(), b.opts) == nil {
			t.Fatal("B did not cache the lookup")
		}
		p := testProfile()
		p.Name = "Augusta Ada King"
		if n, err := a.SetProfile(ctx, "u-renamed", p); err != nil || n != 1 {
			t.Fatalf("SetProfile = %d, %v", n, err)
		}
		waitFor(t, eventually, "B serves the new name", func() bool {
			got, err := b.Lookup(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			return got.Profile == p
		})
		if !bLog.has(sess.ID) {
			t.Error("B's OnRevoke hook was not called: its cached token would keep the old name")
		}
	})
}

// TestRedisStoreDownAndBack: with Redis gone, lookups fail as unavailable
// (never ErrNotFound, never from a stale cache); when Redis is back on the
// same port the same store works again.
func TestRedisStoreDownAndBack(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), 0, Options{Now: clock.Now})
	log := watchRevocations(s)
	ctx := context.Background()
	tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	flushesBefore := log.allCount()

	srv.Stop()
	waitFor(t, eventually, "lookups report the store unavailable", func() bool {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := s.Lookup(lctx, tok)
		if errors.Is(err, ErrNotFound) {
			t.Fatalf("store down: Lookup = %v; want an unavailable error, not ErrNotFound", err)
		}
		if err != nil {
			t.Logf("store down: Lookup failed after %v: %v", time.Since(start), err)
		}
		return IsUnavailable(err)
	})
	// Writes retry until their deadline: keep it short.
	down, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	for _, op := range []func() error{
		func() error { _, _, err := s.Create(down, NewSession{UserID: "u"}); return err },
		func() error { return s.Delete(down, tok) },
		func() error { _, err := s.List(ctx, "u"); return err },
		func() error { _, err := s.DeleteUser(down, "u", ""); return err },
		func() error { return s.Ping(ctx) },
	} {
		if err := op(); !IsUnavailable(err) {
			t.Errorf("store down: %v; want unavailable", err)
		}
	}

	srv.Restart() // empty: the old session is gone
	waitFor(t, eventually, "the store works again", func() bool {
		tok2, _, err := s.Create(ctx, NewSession{UserID: "u"})
		if err != nil {
			return false
		}
		_, err = s.Lookup(ctx, tok2)
		return err == nil
	})
	if _, err := s.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session lost with the server: %v; want ErrNotFound", err)
	}
	waitFor(t, eventually, "OnRevokeAll after the subscription reconnects", func() bool {
		return log.allCount() > flushesBefore && s.live.Load()
	})
}

func TestRedisMalformedTokenCostsNoRoundTrip(t *testing.T) {
	// Nothing listens on this port: any round trip would fail as unavailable.
	s := newTestRedisStore(t, "127.0.0.1:1", false, uniquePrefix(), -1, Options{})
	ctx := context.Background()
	if _, err := s.Lookup(ctx, "garbage"); !errors.Is(err, ErrMalformedToken) {
		t.Fatalf("malformed token: %v; want ErrMalformedToken", err)
	}
	if err := s.Delete(ctx, "garbage"); err != nil {
		t.Fatalf("deleting a malformed token: %v; want nil", err)
	}
	tok, _, _ := newToken("u")
	if _, err := s.Lookup(ctx, tok); !IsUnavailable(err) || errors.Is(err, ErrNotFound) {
		t.Fatalf("well-formed token, no server: %v; want unavailable", err)
	}
}

func TestRedisRandomCookieFloodDoesNotGrowTheCache(t *testing.T) {
	srv := redistest.StartServer(t)
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), 100, Options{})
	ctx := context.Background()
	for range 1000 {
		tok, _, _ := newToken("anyone")
		if _, err := s.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n := s.cache.len(); n != 0 {
		t.Fatalf("cache holds %d entries after unknown cookies; want 0", n)
	}
	for i := range 300 {
		tok, _, err := s.Create(ctx, NewSession{UserID: fmt.Sprint("u", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.cache.len(); n != 100 {
		t.Fatalf("cache holds %d entries; want its bound, 100", n)
	}
}

func TestRedisCloseLeavesNoGoroutines(t *testing.T) {
	srv := redistest.StartServer(t)
	before := runtime.NumGoroutine()
	ctx := context.Background()
	for range 3 {
		s, err := NewRedisStore(RedisConfig{URL: srv.URL(), KeyPrefix: uniquePrefix()}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	m := NewMemoryStore(Options{})
	_ = m.Close()
	waitFor(t, eventually, "goroutines end after Close", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// storedSession creates a session of user "u" in s and returns its token,
// the session, its Redis key and a client to read and write that key.
func storedSession(t *testing.T, s *RedisStore, addr string) (string, *Session, string, redis.UniversalClient) {
	t.Helper()
	tok, sess, err := s.Create(context.Background(), NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parseToken(tok)
	return tok, sess, s.sessionKey(p.userTag, sess.ID), newTestClient(t, addr, false)
}

func TestRedisCorruptRecordIsNotFound(t *testing.T) {
	srv := redistest.StartServer(t)
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), -1, Options{})
	ctx := context.Background()
	tok, _, key, inspect := storedSession(t, s, srv.Addr)
	if err := inspect.Set(ctx, key, "1garbage", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("corrupt record: %v; want ErrNotFound", err)
	}
}

// TestRedisCacheServesRepeatLookupsLocally: within the cache TTL a lookup
// costs no round trip on the request path, also when a touch is due (it is
// written in the background), and a session in use keeps a recent last use.
func TestRedisCacheServesRepeatLookupsLocally(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), 0, Options{Now: clock.Now})
	inspect := newTestClient(t, srv.Addr, false)
	ctx := context.Background()
	tok, _, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if err := lookupScript.Load(ctx, inspect).Err(); err != nil {
		t.Fatal(err)
	}
	lookups := func(n int) int {
		t.Helper()
		if err := inspect.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := s.Lookup(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		st := commandCalls(t, inspect)
		return st["evalsha"] + st["eval"]
	}
	if got := lookups(10); got != 1 {
		t.Fatalf("10 lookups in a row: %d script calls; want 1", got)
	}
	clock.Advance(DefaultCacheTTL)
	if got := lookups(10); got != 1 {
		t.Fatalf("after the cache TTL: %d script calls; want 1", got)
	}
	// Keep the entry fresh but let its last use age past the interval.
	for range 12 {
		clock.Advance(DefaultCacheTTL - time.Millisecond)
		if _, err := s.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := s.Lookup(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if age := clock.Now().Sub(sess.LastUsedAt); age >= DefaultTouchInterval {
		t.Fatalf("last use is %v old although the session was used all along; want under the touch interval", age)
	}
}

// TestRedisDeleteByIDOfAGoneSessionDropsTheCachedCopy: a session this
// instance caches but Redis no longer has (a delete that landed but whose
// answer was lost in a failover) is not served from the cache once
// DeleteByID finds it gone.
func TestRedisDeleteByIDOfAGoneSessionDropsTheCachedCopy(t *testing.T) {
	srv := redistest.StartServer(t)
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), 0, Options{})
	ctx := context.Background()
	tok, sess, err := s.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Behind the cache's back and with no news, as a lost answer and a
	// dropped subscription leave it.
	if n, err := newTestClient(t, srv.Addr, false).Del(ctx, s.sessionKey(userTag("u"), sess.ID)).Result(); err != nil || n != 1 {
		t.Fatalf("DEL: %d %v", n, err)
	}
	if err := s.DeleteByID(ctx, "u", sess.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteByID of a gone session: %v; want ErrNotFound", err)
	}
	if _, err := s.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup after: %v; want ErrNotFound, not the cached copy", err)
	}
}

// TestRedisLookupWithoutDeadlineIsBounded: a caller that passes a context
// without a deadline (the gateway's request path does, to spare cache hits a
// timer) still gets an unavailable error from a Redis that stops answering,
// long before Redis would answer or the client's read timeout would end it:
// the lookup's own deadline does. That it takes DefaultLookupTimeout (2 s)
// is measured by BenchmarkLookupUnresponsiveStore.
func TestRedisLookupWithoutDeadlineIsBounded(t *testing.T) {
	srv := redistest.StartServer(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = admin.Close() })
	const unresponsive = 2 * time.Minute // the pause, and the client's read timeout
	tok, _, _ := newToken("u")
	for _, cacheSize := range []int{0, -1} {
		s, err := NewRedisStore(RedisConfig{URL: srv.URL(), KeyPrefix: uniquePrefix(), CacheSize: cacheSize, ReadTimeout: unresponsive}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		took, err := lookupWhilePaused(t, admin, s, tok, unresponsive)
		if !IsUnavailable(err) {
			t.Errorf("cache size %d: Lookup = %v; want unavailable", cacheSize, err)
		}
		if took >= unresponsive/2 {
			t.Errorf("cache size %d: Lookup took %v: it waited for Redis instead of giving up at its deadline (%v)", cacheSize, took, DefaultLookupTimeout)
		}
		t.Logf("cache size %d: unavailable after %v", cacheSize, took.Round(time.Millisecond))
		_ = s.Close()
	}
}

// lookupWhilePaused looks tok up with no deadline while Redis holds every
// client for pause, and says how long it took.
func lookupWhilePaused(tb testing.TB, admin redis.UniversalClient, s Store, tok string, pause time.Duration) (time.Duration, error) {
	ctx := context.Background()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		tb.Fatal(err)
	}
	defer admin.Do(ctx, "CLIENT", "UNPAUSE")
	start := time.Now()
	_, err := s.Lookup(ctx, tok)
	return time.Since(start), err
}
