// Command bench is the load benchmark of convex_auth: it measures the
// gateway against plain reverse_proxy in the same run, on loopback, with the
// same load generator, and checks the figures against the performance
// targets. Run it with `make bench-load` (which builds ./caddy first) or
// `go run ./bench -caddy ./caddy`.
//
// It starts redis-server, a minimal upstream and one Caddy (the binary built
// from xcaddy.toml) with three sites on free loopback ports: plain
// reverse_proxy, the gateway signing with EdDSA, and the gateway signing
// with RS256. Every run is bounded in time and every process it starts is
// stopped when it ends, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// Defaults of the flags. The whole run takes about five minutes, half of
// it the flood of a million cookies (-flood 100000 shortens it).
const (
	defaultDuration       = 10 * time.Second
	defaultWarmup         = time.Second
	defaultRounds         = 5
	defaultConns          = 32
	defaultRate           = 1000
	defaultRateConns      = 16
	defaultSessions       = 10_000
	defaultFloodCookies   = 1_000_000
	defaultFloodMaxTime   = 150 * time.Second
	defaultMemorySessions = 100_000
	defaultOutput         = "bench/results/latest.md"

	// memoryDB is the Redis database the memory measurement fills.
	memoryDB = 1
	// startTimeout bounds how long each server may take to listen.
	startTimeout = 30 * time.Second
	// runSlack is added to the planned duration for the overall deadline.
	runSlack = 2 * time.Minute
)

type options struct {
	caddyBin       string
	duration       time.Duration
	warmup         time.Duration
	conns          int
	rate           int
	rateConns      int
	sessions       int
	floodCookies   int
	floodMaxTime   time.Duration
	memorySessions int
	mintBench      bool
	output         string
	cpusCaddy      string
	caddyGOGC      string
	cpusAux        string
	profileDir     string
	rounds         int
	only           string
}

func main() {
	role := flag.String("role", "", "internal: \"upstream\" runs the bench upstream")
	listen := flag.String("listen", "", "internal: the upstream's address")
	var o options
	flag.StringVar(&o.caddyBin, "caddy", "./caddy", "the Caddy binary built from xcaddy.toml (make caddy)")
	flag.DurationVar(&o.duration, "duration", defaultDuration, "measured time of each scenario")
	flag.DurationVar(&o.warmup, "warmup", defaultWarmup, "unmeasured warmup before each scenario")
	flag.IntVar(&o.conns, "conns", defaultConns, "keep-alive connections in the max-throughput runs")
	flag.IntVar(&o.rate, "rate", defaultRate, "requests per second in the fixed-rate runs")
	flag.IntVar(&o.rateConns, "rate-conns", defaultRateConns, "connections in the fixed-rate runs")
	flag.IntVar(&o.sessions, "sessions", defaultSessions, "distinct sessions sent in round robin")
	flag.IntVar(&o.floodCookies, "flood", defaultFloodCookies, "distinct random cookies sent in the memory flood (0: skip)")
	flag.DurationVar(&o.floodMaxTime, "flood-max-time", defaultFloodMaxTime, "stop the flood after this long")
	flag.IntVar(&o.memorySessions, "memory-sessions", defaultMemorySessions, "sessions created to measure Redis memory (0: skip)")
	flag.BoolVar(&o.mintBench, "mint", true, "also run go test -bench BenchmarkMint ./issuer")
	flag.StringVar(&o.output, "out", defaultOutput, "where the results table is written (\"\": nowhere)")
	flag.StringVar(&o.caddyGOGC, "caddy-gogc", "", "run Caddy with this GOGC, e.g. 400 (GC, not the gateway's code, sets the cold-session p99); default: Go's, 100")
	flag.StringVar(&o.cpusCaddy, "cpus-caddy", "", "pin Caddy to these CPUs (taskset -c list); default: not pinned")
	flag.StringVar(&o.cpusAux, "cpus-aux", "", "pin redis-server and the upstream to these CPUs; default: not pinned")
	flag.StringVar(&o.only, "only", "", "run only the scenarios whose numbers start with these comma-separated prefixes, e.g. 1.,4a.")
	flag.IntVar(&o.rounds, "rounds", defaultRounds, "rounds in which the scenarios take turns; each gets -duration in all")
	flag.StringVar(&o.profileDir, "profile", "", "save a CPU profile of Caddy for each scenario's measured time in this directory")
	flag.Parse()
	if o.rounds < 1 || o.duration/time.Duration(max(o.rounds, 1)) < time.Second {
		fmt.Fprintln(os.Stderr, "bench: -rounds must be at least 1 and -duration at least a second per round")
		os.Exit(2)
	}

	if *role == "upstream" {
		if err := runUpstream(*listen); err != nil {
			fmt.Fprintln(os.Stderr, "bench upstream:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (o options) selected(scenario string) bool {
	if o.only == "" {
		return true
	}
	for p := range strings.SplitSeq(o.only, ",") {
		if p = strings.TrimSpace(p); p != "" && strings.HasPrefix(scenario, p) {
			return true
		}
	}
	return false
}

// plannedTime is how long the scenarios take, without setup.
func (o options) plannedTime() time.Duration {
	scenarios := 5 + 4 // max throughput, fixed rate
	return time.Duration(scenarios)*(time.Duration(o.rounds)*o.warmup+o.duration) + o.floodMaxTime
}

type env struct {
	dir                             string
	redisAddr                       string
	upstreamAddr                    string
	plainAddr, eddsaAddr, rs256Addr string
	adminAddr                       string
	caddy                           *proc
	procs                           []*proc
}

func (e *env) stop() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop()
	}
}

func run(o options) error {
	caddyBin, err := filepath.Abs(o.caddyBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(caddyBin); err != nil {
		return fmt.Errorf("no Caddy binary at %s: build it with `make caddy` or pass -caddy", caddyBin)
	}
	o.caddyBin = caddyBin
	if _, err := exec.LookPath("redis-server"); err != nil {
		return errors.New("redis-server is not on the PATH: apt-get install -y redis-server")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.plannedTime()+runSlack)
	defer cancel()

	dir, err := os.MkdirTemp("", "convex-auth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir}
	defer e.stop()
	if err := e.start(ctx, o); err != nil {
		return err
	}

	rep := &report{opts: o, machine: describeMachine(ctx)}
	fmt.Println(rep.machine)
	if err := scenarios(ctx, o, e, rep); err != nil {
		return err
	}
	if o.mintBench {
		step("go test -bench BenchmarkMint ./issuer")
		mints, err := mintBenchmarks(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: mint benchmark:", err)
		}
		rep.mint = mints
	}
	text := rep.markdown()
	fmt.Println()
	fmt.Print(text)
	if o.output != "" {
		if err := os.MkdirAll(filepath.Dir(o.output), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.output, []byte(text), 0o644); err != nil {
			return err
		}
		fmt.Println("\nwritten to", o.output)
	}
	return nil
}

func step(what string) { fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), what) }

// start runs redis-server, the upstream and Caddy.
func (e *env) start(ctx context.Context, o options) error {
	ports, err := freePorts(6)
	if err != nil {
		return fmt.Errorf("finding free loopback ports: %w", err)
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	e.redisAddr, e.upstreamAddr, e.plainAddr, e.eddsaAddr, e.rs256Addr, e.adminAddr = addr(0), addr(1), addr(2), addr(3), addr(4), addr(5)

	step("starting redis-server on " + e.redisAddr)
	redisProc, err := startProc("redis-server", filepath.Join(e.dir, "redis.log"), o.cpusAux, nil,
		"redis-server", "--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1", "--dir", e.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err != nil {
		return err
	}
	e.procs = append(e.procs, redisProc)
	if err := redisProc.waitListening(ctx, e.redisAddr, startTimeout); err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	step("starting the upstream on " + e.upstreamAddr)
	up, err := startProc("upstream", filepath.Join(e.dir, "upstream.log"), o.cpusAux, nil, self, "-role", "upstream", "-listen", e.upstreamAddr)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, up)
	if err := up.waitListening(ctx, e.upstreamAddr, startTimeout); err != nil {
		return err
	}

	keys := map[issuer.Algorithm]string{}
	for _, alg := range []issuer.Algorithm{issuer.EdDSA, issuer.RS256} {
		k, err := issuer.GenerateKey(alg)
		if err != nil {
			return err
		}
		pem, err := k.MarshalPKCS8PEM()
		if err != nil {
			return err
		}
		keys[alg] = filepath.Join(e.dir, strings.ToLower(string(alg))+".pem")
		if err := os.WriteFile(keys[alg], pem, 0o600); err != nil {
			return err
		}
	}
	caddyfile := filepath.Join(e.dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(e.caddyfile(keys)), 0o600); err != nil {
		return err
	}
	step("starting caddy (" + o.caddyBin + ")")
	var caddyEnv []string
	if o.caddyGOGC != "" {
		caddyEnv = []string{"GOGC=" + o.caddyGOGC}
	}
	c, err := startProc("caddy", filepath.Join(e.dir, "caddy.log"), o.cpusCaddy, caddyEnv,
		o.caddyBin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	if err != nil {
		return err
	}
	e.procs = append(e.procs, c)
	e.caddy = c
	for _, a := range []string{e.plainAddr, e.eddsaAddr, e.rs256Addr} {
		if err := c.waitListening(ctx, a, startTimeout); err != nil {
			return err
		}
	}
	return nil
}

// caddyfile: three sites, identical but for the gateway and its key. The
// transport keeps enough idle upstream connections for the generator's.
func (e *env) caddyfile(keys map[issuer.Algorithm]string) string {
	proxy := fmt.Sprintf(`reverse_proxy %s {
		transport http {
			keepalive_idle_conns_per_host 256
		}
	}`, e.upstreamAddr)
	gateway := func(addr, key string) string {
		return fmt.Sprintf(`http://%s {
	convex_auth {
		issuer http://%s
		realm %s
		signing_key file %s
		redis redis://%s/0
		protect /loggedin*
	}
	%s
}
`, addr, addr, benchRealm, key, e.redisAddr, proxy)
	}
	return fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	storage file_system %s
	log {
		output file %s
		level WARN
	}
}

http://%s {
	%s
}

`, e.adminAddr, filepath.Join(e.dir, "storage"), filepath.Join(e.dir, "caddy-runtime.log"), e.plainAddr, proxy) +
		gateway(e.eddsaAddr, keys[issuer.EdDSA]) + "\n" + gateway(e.rs256Addr, keys[issuer.RS256])
}

// benchRealm is the realm both gateways serve, so one set of seeded
// sessions is good at either.
const benchRealm = "bench"

// sessionCookieName is the gateway's default cookie on a plain-http
// loopback host.
var sessionCookieName = edge.DefaultCookieNameFor(benchRealm, false)

func scenarios(ctx context.Context, o options, e *env, rep *report) error {
	rc := redis.NewClient(&redis.Options{Addr: e.redisAddr})
	defer rc.Close()

	// Each round-robin scenario has its own sessions, so that none finds
	// sessions or tokens another one left in the caches.
	const roundRobinScenarios = 4
	step(fmt.Sprintf("creating %d sessions in Redis", 1+roundRobinScenarios*o.sessions))
	tokens, err := seedSessions(ctx, "redis://"+e.redisAddr+"/0", 0, 1+roundRobinScenarios*o.sessions)
	if err != nil {
		return err
	}
	hot := tokens[0]
	sets := 0
	nextSessions := func() []string {
		sets++
		return tokens[1+(sets-1)*o.sessions : 1+sets*o.sessions]
	}

	single := func(addr, path, token string) *requestSet {
		cookie := ""
		if token != "" {
			cookie = sessionCookieName + "=" + token + "; theme=dark"
		}
		return &requestSet{reqs: [][]byte{buildRequest(addr, path, cookie)}}
	}
	roundRobin := func(addr string) *requestSet {
		many := nextSessions()
		s := &requestSet{reqs: make([][]byte, len(many))}
		for i, t := range many {
			s.reqs[i] = buildRequest(addr, "/loggedin", sessionCookieName+"="+t+"; theme=dark")
		}
		return s
	}

	type scenario struct {
		name      string
		addr      string
		reqs      *requestSet
		fixedRate bool
		gateway   bool
		session   bool // a gateway with a session: it injects tokens
	}
	list := []scenario{
		{"1. plain reverse_proxy", e.plainAddr, single(e.plainAddr, "/loggedin", hot), false, false, false},
		{"2. gateway, open path, no cookie", e.eddsaAddr, single(e.eddsaAddr, "/", ""), false, true, false},
		{"3. gateway, protected, one hot session", e.rs256Addr, single(e.rs256Addr, "/loggedin", hot), false, true, true},
		{fmt.Sprintf("4a. gateway, %d sessions round robin, EdDSA", o.sessions), e.eddsaAddr, roundRobin(e.eddsaAddr), false, true, true},
		{fmt.Sprintf("4b. gateway, %d sessions round robin, RS256", o.sessions), e.rs256Addr, roundRobin(e.rs256Addr), false, true, true},
		{fmt.Sprintf("5.1 plain reverse_proxy @ %d/s", o.rate), e.plainAddr, single(e.plainAddr, "/loggedin", hot), true, false, false},
		{fmt.Sprintf("5.3 one hot session @ %d/s", o.rate), e.rs256Addr, single(e.rs256Addr, "/loggedin", hot), true, true, true},
		{fmt.Sprintf("5.4a %d sessions, EdDSA @ %d/s", o.sessions, o.rate), e.eddsaAddr, roundRobin(e.eddsaAddr), true, true, true},
		{fmt.Sprintf("5.4b %d sessions, RS256 @ %d/s", o.sessions, o.rate), e.rs256Addr, roundRobin(e.rs256Addr), true, true, true},
	}
	// Rounds: the scenarios of a group take turns, each measured for its
	// share of -duration, so that a drift in the machine's load (other
	// processes) falls on plain and gateway alike.
	results := make([]result, len(list))
	minted := make([]int, len(list))
	lookups := make([]int64, len(list))
	slice := o.duration / time.Duration(o.rounds)
	for _, fixed := range []bool{false, true} {
		for round := 1; round <= o.rounds; round++ {
			for i, s := range list {
				if s.fixedRate != fixed || !o.selected(s.name) {
					continue
				}
				step(fmt.Sprintf("%s (round %d of %d)", s.name, round, o.rounds))
				if _, err := upstreamTokens(e.upstreamAddr); err != nil {
					return fmt.Errorf("resetting the upstream's token count: %w", err)
				}
				callsBefore, err := scriptCalls(ctx, rc)
				if err != nil {
					return err
				}
				profiled := make(chan error, 1)
				if o.profileDir != "" {
					path := filepath.Join(o.profileDir, profileName(s.name, round))
					go func() { profiled <- saveProfile(ctx, e.adminAddr, o.warmup, slice, path) }()
				} else {
					profiled <- nil
				}
				var res result
				if s.fixedRate {
					res, err = fixedRate(ctx, s.addr, s.reqs, o.rate, o.rateConns, o.warmup, slice)
				} else {
					res, err = maxThroughput(ctx, s.addr, s.reqs, o.conns, o.warmup, slice)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
				if err := <-profiled; err != nil {
					return fmt.Errorf("%s: cpu profile: %w", s.name, err)
				}
				n, err := upstreamTokens(e.upstreamAddr)
				if err != nil {
					return fmt.Errorf("reading the upstream's token count: %w", err)
				}
				callsAfter, err := scriptCalls(ctx, rc)
				if err != nil {
					return err
				}
				lookups[i] += callsAfter - callsBefore
				fmt.Printf("    %.0f req/s, p50 %s, p99 %s, %d errors, statuses %v, %d tokens\n", res.rps(), fmtDur(res.percentile(50)), fmtDur(res.percentile(99)), res.errors, res.statuses, n)
				results[i] = results[i].add(res)
				minted[i] += n
			}
		}
	}
	for i, s := range list {
		if !o.selected(s.name) {
			continue
		}
		r := row{name: s.name, res: results[i], fixedRate: s.fixedRate, gateway: s.gateway, mintsPerReq: -1, lookupsPerReq: -1}
		if s.session && results[i].total > 0 {
			r.mintsPerReq = float64(minted[i]) / float64(results[i].total)
			r.lookupsPerReq = float64(lookups[i]) / float64(results[i].total)
		}
		rep.rows = append(rep.rows, r)
	}

	if o.floodCookies > 0 {
		step(fmt.Sprintf("flood: %d distinct random cookies to the EdDSA gateway", o.floodCookies))
		f, err := flood(ctx, e.eddsaAddr, e.eddsaAddr, sessionCookieName, o.floodCookies, o.conns, o.floodMaxTime, e.caddy.pid(), e.adminAddr, rc)
		if err != nil {
			return fmt.Errorf("flood: %w", err)
		}
		rep.flood = &f
		fmt.Printf("    %d cookies in %s, %d store lookups, statuses %v\n", f.answered, f.elapsed.Round(time.Second), f.lookups, f.statuses)
	}
	if o.memorySessions > 0 {
		step(fmt.Sprintf("Redis MEMORY USAGE over %d sessions", o.memorySessions))
		m, err := measureRedisMemory(ctx, e.redisAddr, memoryDB, o.memorySessions)
		if err != nil {
			return fmt.Errorf("measuring Redis memory: %w", err)
		}
		rep.redisMem = &m
	}
	return nil
}

// upstreamTokens returns the distinct tokens the upstream saw since the
// previous call.
func upstreamTokens(addr string) (int, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + benchTokensPath)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(body))
}

func profileName(scenario string, round int) string {
	id, _, _ := strings.Cut(scenario, " ")
	return fmt.Sprintf("caddy-%s-r%d.pprof", strings.TrimSuffix(id, "."), round)
}

// saveProfile waits out the warmup, then records Caddy's CPU profile for
// the measured time.
func saveProfile(ctx context.Context, adminAddr string, warmup, duration time.Duration, path string) error {
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	secs := max(int(duration/time.Second), 1)
	c := http.Client{Timeout: duration + 10*time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", adminAddr, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
