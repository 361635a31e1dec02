package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The targets of the performance issues (issue 13 for the default config,
// reuse off and the peer).
const (
	targetHotRatio     = 0.95 // default config, one hot session
	targetDefaultRatio = 0.90 // default config, many sessions
	targetEdDSARatio   = 0.75
	// targetClaimsRatioDelta: claims and rules on lose at most this much
	// of the ratio to plain.
	targetClaimsRatioDelta = 0.03
	targetReuseOffRatio    = 0.75 // a mint per request, EdDSA
	targetRS256Ratio       = 0.40
	targetVsForwardAuth    = 2.5 // default, many sessions, over forward_auth → oauth2-proxy
	targetAddedP99Hot      = 500 * time.Microsecond
	targetAddedP99         = time.Millisecond
	targetMintEdDSA        = 35 * time.Microsecond
	targetMintRS256        = time.Millisecond
	targetRedisBytes       = 400
	targetFloodHeapPerCk   = 16 // bytes of live heap growth per flooded cookie
)

type row struct {
	name        string
	res         result
	fixedRate   bool
	gateway     bool
	mintsPerReq float64 // -1: no tokens in this scenario
	// lookupsPerReq is Redis lookups (script calls) per request; -1: none
	lookupsPerReq float64
	// writesPerReq is last-use writes (SETRANGE, inside the lookup script)
	// per request, on the request path or in the background
	writesPerReq float64
}

type report struct {
	opts     options
	machine  string
	rows     []row
	flood    *floodResult
	cached   *cachedResult
	redisMem *redisMemory
	mint     map[string]time.Duration // "RS256" -> ns/op
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
}

func fmtBytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func fmtInt(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func yesNo(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// ratioLost is how much of plain's throughput with loses against without,
// measured in the same rounds: the median over rounds of (without − with)
// / plain. Pairing by round keeps a drift in the machine's load out of the
// difference, which the two medians of ratioToPlain would let in.
func ratioLost(with, without, plain *row) float64 {
	n := min(len(with.res.roundRPS), len(without.res.roundRPS), len(plain.res.roundRPS))
	if n == 0 {
		return ratioToPlain(without, plain) - ratioToPlain(with, plain)
	}
	lost := make([]float64, n)
	for i := range n {
		lost[i] = (without.res.roundRPS[i] - with.res.roundRPS[i]) / plain.res.roundRPS[i]
	}
	return median(lost)
}

func median(v []float64) float64 {
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// ratioToPlain is the median over rounds of the scenario's req/s over
// plain's in the same round: a burst of other load in one round moves it
// less than it moves the totals.
func ratioToPlain(x, plain *row) float64 {
	n := min(len(x.res.roundRPS), len(plain.res.roundRPS))
	if n == 0 {
		return x.res.rps() / plain.res.rps()
	}
	ratios := make([]float64, n)
	for i := range n {
		ratios[i] = x.res.roundRPS[i] / plain.res.roundRPS[i]
	}
	return median(ratios)
}

// addedP99 is the median over rounds of the scenario's p99 minus plain's
// in the same round.
func addedP99(x, plain *row) time.Duration {
	n := min(len(x.res.roundP99), len(plain.res.roundP99))
	if n == 0 {
		return x.res.percentile(99) - plain.res.percentile(99)
	}
	added := make([]time.Duration, n)
	for i := range n {
		added[i] = x.res.roundP99[i] - plain.res.roundP99[i]
	}
	slices.Sort(added)
	if n%2 == 1 {
		return added[n/2]
	}
	return (added[n/2-1] + added[n/2]) / 2
}

func (r *report) find(prefix string) *row {
	for i := range r.rows {
		if strings.HasPrefix(r.rows[i].name, prefix) {
			return &r.rows[i]
		}
	}
	return nil
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "### Load benchmark (`make bench-load`)\n\n%s\n\n", r.machine)
	if o.caddyGOGC != "" {
		fmt.Fprintf(&b, "Caddy ran with GOGC=%s (`-caddy-gogc`).\n\n", o.caddyGOGC)
	}
	fmt.Fprintf(&b, "Each scenario: %s measured in %d rounds (the scenarios take turns), each after a %s warmup; %d keep-alive connections at max throughput, %d at the fixed rate. ", o.duration, o.rounds, o.warmup, o.conns, o.rateConns)
	b.WriteString("\"vs plain\" is the median over rounds of the req/s ratio to plain reverse_proxy in the same round, or at the fixed rate of the p99 added to plain's in the same round; p50 and p99 are over all rounds. Fixed-rate latencies count from when each request was due (no coordinated omission).\n\n")
	b.WriteString("| scenario | req/s | p50 | p99 | vs plain | tokens minted / req | Redis lookups / req | of which last-use writes / req |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	plain, plainFixed := r.find("1."), r.find("5.1")
	for _, x := range r.rows {
		vs := "1.00"
		switch {
		case x.fixedRate && plainFixed != nil && x.gateway:
			vs = fmt.Sprintf("p99 %+.2f ms", float64(addedP99(&x, plainFixed))/1e6)
		case x.fixedRate:
			vs = "–"
		case plain != nil && x.gateway:
			vs = fmt.Sprintf("%.2f", ratioToPlain(&x, plain))
		}
		minted, looked, written := "–", "–", "–"
		if x.mintsPerReq >= 0 {
			minted = fmt.Sprintf("%.3f", x.mintsPerReq)
			looked = fmt.Sprintf("%.3f", x.lookupsPerReq)
			written = fmt.Sprintf("%.3f", x.writesPerReq)
		}
		name := x.name
		if bad := x.res.errors + x.res.non2xx; bad > 0 {
			name += fmt.Sprintf(" (%d errors or non-2xx: %v)", bad, x.res.statuses)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, fmtInt(int(x.res.rps()+0.5)), fmtDur(x.res.percentile(50)), fmtDur(x.res.percentile(99)), vs, minted, looked, written)
	}

	b.WriteString("\nPer round (req/s at max throughput, p99 at the fixed rate), to show how much the machine's other load moved them:\n\n")
	for _, x := range r.rows {
		var parts []string
		if x.fixedRate {
			for _, p := range x.res.roundP99 {
				parts = append(parts, fmtDur(p))
			}
		} else {
			for _, v := range x.res.roundRPS {
				parts = append(parts, fmtInt(int(v+0.5)))
			}
		}
		id, _, _ := strings.Cut(x.name, " ")
		fmt.Fprintf(&b, "- %s %s\n", id, strings.Join(parts, " / "))
	}

	if f := r.flood; f != nil {
		fmt.Fprintf(&b, "\nFlood: %s distinct random well-formed cookies on a protected path in %s (%s/s), statuses %v; Redis served %s lookups (%.3f per cookie).\n\n",
			fmtInt(f.answered), f.elapsed.Round(time.Second), fmtInt(int(float64(f.answered)/f.elapsed.Seconds())), f.statuses, fmtInt(int(f.lookups)), float64(f.lookups)/float64(max(f.answered, 1)))
		b.WriteString("| cookies sent | Caddy RSS | Caddy live heap (after GC) |\n| ---: | ---: | ---: |\n")
		for _, s := range f.samples {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", fmtInt(s.after), fmtBytes(s.rss), fmtBytes(s.heap))
		}
		fmt.Fprintf(&b, "\nCaddy's peak RSS over the whole run: %s.\n", fmtBytes(f.peakRSS))
	}
	if c := r.cached; c != nil {
		b.WriteString(c.markdown())
	}
	if m := r.redisMem; m != nil {
		fmt.Fprintf(&b, "\nRedis memory over %s sessions (one per user): MEMORY USAGE %d bytes per session (record %d + user index %d); INFO used_memory grew %d bytes per session.\n",
			fmtInt(m.sessions), m.perSession, m.sessionKey, m.indexKey, m.usedMemoryDelta)
	}

	b.WriteString("\n| target | measured | |\n| --- | --- | --- |\n")
	ratio := func(prefix string, target float64, label string) {
		x := r.find(prefix)
		if x == nil || plain == nil {
			return
		}
		v := ratioToPlain(x, plain)
		fmt.Fprintf(&b, "| %s ≥ %.2f of plain | %.2f | %s |\n", label, target, v, yesNo(v >= target))
	}
	ratio("3.", targetHotRatio, "default config, one hot session")
	ratio("4. ", targetDefaultRatio, fmt.Sprintf("default config, %d sessions", o.sessions))
	ratio("4a.", targetEdDSARatio, fmt.Sprintf("%d sessions, EdDSA", o.sessions))
	ratio("4b.", targetRS256Ratio, fmt.Sprintf("%d sessions, RS256", o.sessions))
	ratio("4c.", targetReuseOffRatio, "a mint per request, EdDSA")
	// Claims and rules on cost (nearly) nothing: the same ratio as without.
	for _, pair := range [][2]string{{"3c.", "3."}, {"4d.", "4a."}} {
		with, without := r.find(pair[0]), r.find(pair[1])
		if with == nil || without == nil || plain == nil {
			continue
		}
		d := ratioLost(with, without, plain)
		fmt.Fprintf(&b, "| claims and rules on (%s) within %.2f of off (%s) | %+.2f | %s |\n", strings.TrimSuffix(pair[0], "."), targetClaimsRatioDelta, strings.TrimSuffix(pair[1], "."), -d, yesNo(d <= targetClaimsRatioDelta))
	}
	if def, fwd := r.find("4. "), r.find("6b."); def != nil && fwd != nil && plain != nil {
		v := ratioToPlain(def, plain) / ratioToPlain(fwd, plain)
		fmt.Fprintf(&b, "| default config, %d sessions ≥ %.1f× forward_auth → oauth2-proxy | %.2f× | %s |\n", o.sessions, targetVsForwardAuth, v, yesNo(v >= targetVsForwardAuth))
	}
	for _, p := range []string{"5.3", "5.4 ", "5.4a", "5.4b"} {
		x := r.find(p)
		if x == nil || plainFixed == nil {
			continue
		}
		target := targetAddedP99
		if p == "5.3" {
			target = targetAddedP99Hot
		}
		added := addedP99(x, plainFixed)
		fmt.Fprintf(&b, "| added p99 at %d req/s ≤ %s: %s | %+.2f ms | %s |\n", o.rate, fmtDur(target), strings.TrimSpace(strings.SplitN(x.name, "@", 2)[0][len(p):]), float64(added)/1e6, yesNo(added <= target))
	}
	for _, m := range []struct {
		alg    string
		target time.Duration
	}{{"EdDSA", targetMintEdDSA}, {"RS256", targetMintRS256}} {
		if v, ok := r.mint[m.alg]; ok {
			fmt.Fprintf(&b, "| `issuer` Mint %s ≤ %s/op | %s | %s |\n", m.alg, fmtDur(m.target), fmtMicros(v), yesNo(v <= m.target))
		}
	}
	if m := r.redisMem; m != nil {
		fmt.Fprintf(&b, "| Redis memory per session ≤ %d B | %d B | %s |\n", targetRedisBytes, m.perSession, yesNo(m.perSession <= targetRedisBytes))
	}
	if f := r.flood; f != nil && len(f.samples) > 1 {
		first, last := f.samples[0], f.samples[len(f.samples)-1]
		growth := last.heap - first.heap
		per := float64(growth) / float64(max(f.answered, 1))
		fmt.Fprintf(&b, "| flood: at most one store lookup per random cookie | %.3f | %s |\n", float64(f.lookups)/float64(max(f.answered, 1)), yesNo(f.lookups <= int64(f.answered)))
		fmt.Fprintf(&b, "| flood: live heap bounded (growth < %d B per cookie) | %+.1f B per cookie (%s → %s) | %s |\n", targetFloodHeapPerCk, per, fmtBytes(first.heap), fmtBytes(last.heap), yesNo(per < targetFloodHeapPerCk))
	}
	return b.String()
}

func fmtMicros(d time.Duration) string {
	if d >= time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f µs", float64(d)/1e3)
}

// describeMachine names what the figures were measured on.
func describeMachine(ctx context.Context) string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load, _ := os.ReadFile("/proc/loadavg")
	redisVersion := "redis-server ?"
	if out, err := exec.CommandContext(ctx, "redis-server", "--version").Output(); err == nil {
		if m := regexp.MustCompile(`v=(\S+)`).FindSubmatch(out); m != nil {
			redisVersion = "redis-server " + string(m[1])
		}
	}
	loadFields := strings.Fields(string(load))
	loadAvg := "?"
	if len(loadFields) > 0 {
		loadAvg = loadFields[0]
	}
	return fmt.Sprintf("Machine: %d CPUs (nproc), %s, Linux %s, %s, %s; load average %s at start; %s.",
		runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version(), redisVersion, loadAvg, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

var mintLine = regexp.MustCompile(`^BenchmarkMint/(\w+)-\d+\s+\d+\s+([\d.]+) ns/op`)

// mintBenchmarks runs the issuer's BenchmarkMint and returns ns/op per
// algorithm.
func mintBenchmarks(ctx context.Context) (map[string]time.Duration, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkMint$", "-benchtime", "2s", "./issuer")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, out.String())
	}
	res := map[string]time.Duration{}
	for line := range strings.SplitSeq(out.String(), "\n") {
		if m := mintLine.FindStringSubmatch(line); m != nil {
			ns, _ := strconv.ParseFloat(m[2], 64)
			res[m[1]] = time.Duration(ns)
		}
	}
	return res, nil
}
