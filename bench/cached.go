package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// cachedResult is Caddy's memory once n sessions were each looked up (and
// so cached, with a token) by the default gateway, and what a second pass
// over the same sessions cost Redis.
type cachedResult struct {
	sessions              int
	rssBefore, rssAfter   int64
	heapBefore, heapAfter int64
	firstLookups          int64 // Redis script calls during the first pass
	secondLookups         int64 // and the second
	secondWrites          int64 // of which last-use writes (SETRANGE)
	statuses              map[int]int
	firstPass, secondPass time.Duration
}

// cachedSessions creates n sessions, sends one request for each to the
// default gateway (a lookup that fills the session cache, and a mint that
// fills the site's token cache), then one more pass, reading Caddy's RSS
// (/proc/<pid>/status) and live heap before and after. It runs on a fresh
// Caddy, before the scenarios, so that nothing else is cached.
func cachedSessions(ctx context.Context, e *env, n, conns int) (cachedResult, error) {
	res := cachedResult{sessions: n, statuses: map[int]int{}}
	rc := redis.NewClient(&redis.Options{Addr: e.redisAddr})
	defer rc.Close()
	// Past the scenarios' sessions, so none is cached yet.
	tokens, err := seedSessions(ctx, "redis://"+e.redisAddr+"/0", 1_000_000, n)
	if err != nil {
		return res, err
	}
	reqs := make([][]byte, n)
	for i, t := range tokens {
		reqs[i] = buildRequest(e.defaultAddr, "/loggedin", sessionCookieName+"="+t+"; theme=dark")
	}
	pass := func() (took time.Duration, lookups, writes int64, err error) {
		calls0, err := scriptCalls(ctx, rc)
		if err != nil {
			return 0, 0, 0, err
		}
		writes0, err := lastUseWrites(ctx, rc)
		if err != nil {
			return 0, 0, 0, err
		}
		start := time.Now()
		for st, k := range sendAll(ctx, e.defaultAddr, reqs, conns) {
			res.statuses[st] += k
		}
		took = time.Since(start)
		// Let the background writer finish what the pass queued.
		time.Sleep(time.Second)
		calls1, err := scriptCalls(ctx, rc)
		if err != nil {
			return 0, 0, 0, err
		}
		writes1, err := lastUseWrites(ctx, rc)
		return took, calls1 - calls0, writes1 - writes0, err
	}
	res.rssBefore, _, _ = procMemory(e.caddy.pid())
	res.heapBefore, _ = liveHeap(e.adminAddr)
	if res.firstPass, res.firstLookups, _, err = pass(); err != nil {
		return res, err
	}
	if res.secondPass, res.secondLookups, res.secondWrites, err = pass(); err != nil {
		return res, err
	}
	res.heapAfter, _ = liveHeap(e.adminAddr)
	res.rssAfter, _, _ = procMemory(e.caddy.pid())
	return res, ctx.Err()
}

// sendAll sends each request once over conns keep-alive connections and
// counts the statuses (-1: a transport error).
func sendAll(ctx context.Context, addr string, reqs [][]byte, conns int) map[int]int {
	all := map[int]int{}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			c := &conn{addr: addr}
			defer c.close()
			statuses := map[int]int{}
			for i := next.Add(1) - 1; i < int64(len(reqs)) && ctx.Err() == nil; i = next.Add(1) - 1 {
				status, err := c.roundTrip(reqs[i])
				if err != nil {
					statuses[-1]++
					continue
				}
				statuses[status]++
			}
			mu.Lock()
			for s, k := range statuses {
				all[s] += k
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return all
}

func (c *cachedResult) markdown() string {
	perSession := float64(c.heapAfter-c.heapBefore) / float64(max(c.sessions, 1))
	return fmt.Sprintf("\nCached sessions: %s sessions, each requested once through the default gateway (%s, %s lookups in Redis), then once more (%s, %s lookups: %.3f per request, of which %s last-use writes, due for sessions first requested over a minute before), statuses %v.\n\n"+
		"| | Caddy RSS | Caddy live heap (after GC) |\n| --- | ---: | ---: |\n"+
		"| before | %s | %s |\n| with %s sessions cached (and a token each) | %s | %s |\n\n"+
		"Live heap per cached session, its session cache entry and its reusable token together: %.0f B.\n",
		fmtInt(c.sessions), c.firstPass.Round(time.Millisecond), fmtInt(int(c.firstLookups)),
		c.secondPass.Round(time.Millisecond), fmtInt(int(c.secondLookups)), float64(c.secondLookups)/float64(max(c.sessions, 1)), fmtInt(int(c.secondWrites)), c.statuses,
		fmtBytes(c.rssBefore), fmtBytes(c.heapBefore), fmtInt(c.sessions), fmtBytes(c.rssAfter), fmtBytes(c.heapAfter), perSession)
}
