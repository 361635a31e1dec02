package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator speaks HTTP/1.1 keep-alive over raw connections with
// prebuilt requests, so that it costs the shared CPU little (about what wrk
// costs) and the same for every target.

// requestSet is the requests one scenario sends, in round robin.
type requestSet struct {
	reqs [][]byte
	next atomic.Uint64
}

func (s *requestSet) pick() []byte {
	return s.reqs[(s.next.Add(1)-1)%uint64(len(s.reqs))]
}

// buildRequest is a GET with the given cookie header value ("" for none).
func buildRequest(host, path, cookie string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: convex-auth-bench\r\nAccept: */*\r\n", path, host)
	if cookie != "" {
		fmt.Fprintf(&b, "Cookie: %s\r\n", cookie)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// result is what one run measured.
type result struct {
	total     int // completed round trips, warmup included
	requests  int
	errors    int // transport errors
	non2xx    int
	statuses  map[int]int
	elapsed   time.Duration
	latencies []time.Duration // sorted
	roundRPS  []float64       // req/s of each round, in order
	roundP99  []time.Duration // p99 of each round, in order
}

// add combines two runs of one scenario.
func (r result) add(o result) result {
	statuses := make(map[int]int)
	for _, m := range []map[int]int{r.statuses, o.statuses} {
		for s, n := range m {
			statuses[s] += n
		}
	}
	lat := append(slices.Clone(r.latencies), o.latencies...)
	slices.Sort(lat)
	return result{
		total: r.total + o.total, requests: r.requests + o.requests, errors: r.errors + o.errors,
		non2xx: r.non2xx + o.non2xx, statuses: statuses, elapsed: r.elapsed + o.elapsed, latencies: lat,
		roundRPS: append(slices.Clone(r.roundRPS), o.rps()),
		roundP99: append(slices.Clone(r.roundP99), o.percentile(99)),
	}
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies))*p/100+0.5) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// conn is one keep-alive connection; it redials after a close or an error.
type conn struct {
	addr string
	c    net.Conn
	rd   *bufio.Reader
}

func (c *conn) roundTrip(req []byte) (status int, err error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 2*time.Second)
		if err != nil {
			return 0, err
		}
		c.c = nc
		c.rd = bufio.NewReaderSize(nc, 16<<10)
	}
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write(req); err != nil {
		c.close()
		return 0, err
	}
	status, closeAfter, err := readResponse(c.rd)
	if err != nil || closeAfter {
		c.close()
	}
	return status, err
}

func (c *conn) close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c, c.rd = nil, nil
	}
}

// readResponse reads one response and discards its body. It understands
// Content-Length, chunked bodies and Connection: close, which is all that
// Caddy and the bench upstream send.
func readResponse(rd *bufio.Reader) (status int, closeAfter bool, err error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	for {
		line, err = rd.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, fmt.Errorf("bad content-length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			line, err = rd.ReadSlice('\n')
			if err != nil {
				return 0, false, err
			}
			size, perr := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
			if perr != nil {
				return 0, false, fmt.Errorf("bad chunk size %q", line)
			}
			if _, err = rd.Discard(int(size) + 2); err != nil {
				return 0, false, err
			}
			if size == 0 {
				return status, closeAfter, nil
			}
		}
	case length > 0:
		_, err = rd.Discard(length)
	case length < 0 && status != 204 && status != 304:
		// No length: the body runs to the close.
		_, err = io.Copy(io.Discard, rd)
		closeAfter = true
	}
	return status, closeAfter, err
}

// tally collects one worker's outcomes.
type tally struct {
	requests, errors, non2xx int
	statuses                 map[int]int
	latencies                []time.Duration
}

func (t *tally) add(status int, err error, lat time.Duration) {
	if err != nil {
		t.errors++
		return
	}
	t.requests++
	if t.statuses == nil {
		t.statuses = make(map[int]int)
	}
	t.statuses[status]++
	if status < 200 || status > 299 {
		t.non2xx++
	}
	t.latencies = append(t.latencies, lat)
}

func merge(ts []*tally, elapsed time.Duration, total int) result {
	r := result{total: total, elapsed: elapsed, statuses: make(map[int]int)}
	for _, t := range ts {
		r.requests += t.requests
		r.errors += t.errors
		r.non2xx += t.non2xx
		for s, n := range t.statuses {
			r.statuses[s] += n
		}
		r.latencies = append(r.latencies, t.latencies...)
	}
	slices.Sort(r.latencies)
	return r
}

// maxThroughput keeps conns connections busy (closed loop) for warmup, then
// measures for duration.
func maxThroughput(ctx context.Context, addr string, reqs *requestSet, conns int, warmup, duration time.Duration) (result, error) {
	var measuring atomic.Bool
	var total atomic.Int64
	stop := make(chan struct{})
	tallies := make([]*tally, conns)
	var wg sync.WaitGroup
	for i := range conns {
		t := &tally{latencies: make([]time.Duration, 0, 1<<14)}
		tallies[i] = t
		wg.Go(func() {
			c := &conn{addr: addr}
			defer c.close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				status, err := c.roundTrip(reqs.pick())
				if err == nil {
					total.Add(1)
				}
				if measuring.Load() {
					t.add(status, err, time.Since(start))
				}
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wait := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := wait(warmup)
	start := time.Now()
	measuring.Store(true)
	if err == nil {
		err = wait(duration)
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	return merge(tallies, elapsed, int(total.Load())), err
}

// fixedRate sends rate requests per second on a schedule (open loop) for
// duration after a warmup. Each latency runs from the time the request was
// due, not from when a connection was free to send it, so a stall counts
// against every request it delayed (no coordinated omission).
func fixedRate(ctx context.Context, addr string, reqs *requestSet, rate, conns int, warmup, duration time.Duration) (result, error) {
	interval := time.Second / time.Duration(rate)
	total := int((warmup + duration) / interval)
	warmupCount := int(warmup / interval)
	type job struct {
		due     time.Time
		measure bool
	}
	jobs := make(chan job, total)
	var completed atomic.Int64
	tallies := make([]*tally, conns)
	var wg sync.WaitGroup
	for i := range conns {
		t := &tally{latencies: make([]time.Duration, 0, total/conns+1)}
		tallies[i] = t
		wg.Go(func() {
			c := &conn{addr: addr}
			defer c.close()
			for j := range jobs {
				status, err := c.roundTrip(reqs.pick())
				if err == nil {
					completed.Add(1)
				}
				if j.measure {
					t.add(status, err, time.Since(j.due))
				}
			}
		})
	}
	begin := time.Now()
	var measureStart time.Time
	var err error
schedule:
	for i := range total {
		due := begin.Add(time.Duration(i) * interval)
		if i == warmupCount {
			measureStart = due
		}
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				err = ctx.Err()
				break schedule
			}
		}
		jobs <- job{due: due, measure: i >= warmupCount}
	}
	close(jobs)
	wg.Wait()
	if measureStart.IsZero() {
		return result{}, errors.Join(err, errors.New("fixed-rate run ended before measuring"))
	}
	return merge(tallies, time.Since(measureStart), int(completed.Load())), err
}
