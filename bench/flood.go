package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// floodSamples is how many times memory is read during a flood.
const floodSamples = 4

// floodResult is the gateway's memory while it was sent distinct random
// cookies, each shaped like a real session token.
type floodResult struct {
	sent, answered int
	statuses       map[int]int
	elapsed        time.Duration
	lookups        int64 // Redis script calls during the flood
	samples        []memSample
	peakRSS        int64
}

type memSample struct {
	after     int // cookies sent when read
	rss, heap int64
}

// liveHeap forces a GC in Caddy (through its admin pprof endpoint) and
// returns the heap still in use after it.
func liveHeap(adminAddr string) (int64, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + adminAddr + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("caddy's heap profile has no HeapAlloc line")
}

// randomToken is a well-formed session token (11-character tag, '.', 43
// characters of secret) that names no session.
func randomToken(rng *rand.ChaCha8, buf []byte) []byte {
	var raw [40]byte
	for i := 0; i < len(raw); i += 8 {
		binary.LittleEndian.PutUint64(raw[i:], rng.Uint64())
	}
	enc := base64.RawURLEncoding
	buf = enc.AppendEncode(buf, raw[:8])
	buf = append(buf, '.')
	return enc.AppendEncode(buf, raw[8:40])
}

// flood sends n requests, each with a new random cookie, to a protected
// path, and reads the gateway's memory as it goes. It stops at maxTime.
func flood(ctx context.Context, addr, host, cookieName string, n, conns int, maxTime time.Duration, caddyPID int, adminAddr string, rc *redis.Client) (floodResult, error) {
	res := floodResult{statuses: make(map[int]int)}
	lookupsBefore, err := scriptCalls(ctx, rc)
	if err != nil {
		return res, err
	}
	sample := func(after int) {
		rss, _, _ := procMemory(caddyPID)
		heap, _ := liveHeap(adminAddr)
		res.samples = append(res.samples, memSample{after: after, rss: rss, heap: heap})
	}
	sample(0)

	var sent, answered atomic.Int64
	var mu sync.Mutex
	deadline := time.Now().Add(maxTime)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			rng := rand.NewChaCha8([32]byte{byte(w), byte(w >> 8), 'f', 'l', 'o', 'o', 'd'})
			c := &conn{addr: addr}
			defer c.close()
			statuses := make(map[int]int)
			defer func() {
				mu.Lock()
				for s, k := range statuses {
					res.statuses[s] += k
				}
				mu.Unlock()
			}()
			prefix := fmt.Appendf(nil, "GET /loggedin HTTP/1.1\r\nHost: %s\r\nUser-Agent: convex-auth-bench\r\nAccept: */*\r\nCookie: %s=", host, cookieName)
			req := make([]byte, 0, len(prefix)+128)
			for sent.Add(1) <= int64(n) {
				if ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
				req = append(req[:0], prefix...)
				req = randomToken(rng, req)
				req = append(req, "\r\n\r\n"...)
				status, err := c.roundTrip(req)
				if err != nil {
					continue
				}
				statuses[status]++
				answered.Add(1)
			}
		})
	}
	// Memory while the flood runs, at each quarter.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	next := 1
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			if a := int(answered.Load()); next < floodSamples && a >= next*n/floodSamples {
				sample(a)
				next++
			}
		}
	}
	res.elapsed = time.Since(start)
	res.sent = min(int(sent.Load()), n)
	res.answered = int(answered.Load())
	sample(res.answered)
	lookupsAfter, err := scriptCalls(ctx, rc)
	if err != nil {
		return res, err
	}
	res.lookups = lookupsAfter - lookupsBefore
	_, res.peakRSS, _ = procMemory(caddyPID)
	return res, nil
}
