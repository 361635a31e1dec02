// Command bench is the load benchmark of convex_auth: it measures the
// gateway against plain reverse_proxy in the same run, on loopback, with the
// same load generator, and checks the figures against the performance
// targets. Run it with `make bench-load` (which builds ./caddy first) or
// `go run ./bench -caddy ./caddy`.
//
// It starts redis-server, a minimal upstream and one Caddy (the binary built
// from xcaddy.toml) with sites on free loopback ports: plain reverse_proxy,
// the gateway in its default config (a generated EdDSA key), the gateway
// signing with an EdDSA key, with an RS256 key, and with reuse off; and,
// when it can be built, oauth2-proxy (bench/oauth2proxy) directly and
// behind Caddy's forward_auth. Every run is bounded in time and every
// process it starts is stopped when it ends, also on Ctrl-C.
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
	defaultCachedSessions = 100_000
	defaultOutput         = "bench/results/latest.md"

	// cachedMaxTime bounds the cached-sessions passes in the deadline.
	cachedMaxTime = 3 * time.Minute

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
	cachedSessions int
	prime          bool
	mintBench      bool
	output         string
	cpusCaddy      string
	caddyGOGC      string
	cpusAux        string
	profileDir     string
	rounds         int
	only           string
	peer           bool
	peerBin        string
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
	flag.IntVar(&o.cachedSessions, "cached-sessions", defaultCachedSessions, "sessions requested twice through the default gateway to measure Caddy's RSS with them cached (0: skip)")
	flag.BoolVar(&o.prime, "prime", true, "before its first round, request each round-robin scenario's sessions once, unmeasured, so the rounds measure returning users")
	flag.BoolVar(&o.mintBench, "mint", true, "also run go test -bench BenchmarkMint ./issuer")
	flag.StringVar(&o.output, "out", defaultOutput, "where the results table is written (\"\": nowhere)")
	flag.StringVar(&o.caddyGOGC, "caddy-gogc", "", "run Caddy with this GOGC, e.g. 400 (GC, not the gateway's code, sets the cold-session p99); default: Go's, 100")
	flag.StringVar(&o.cpusCaddy, "cpus-caddy", "", "pin Caddy to these CPUs (taskset -c list); default: not pinned")
	flag.StringVar(&o.cpusAux, "cpus-aux", "", "pin redis-server and the upstream to these CPUs; default: not pinned")
	flag.StringVar(&o.only, "only", "", "run only the scenarios whose numbers start with these comma-separated prefixes, e.g. 1.,4a.")
	flag.BoolVar(&o.peer, "peer", true, "also measure oauth2-proxy "+peerVersion+" directly and behind forward_auth (built from "+peerModuleDir+"; skipped with a message when it cannot be)")
	flag.StringVar(&o.peerBin, "oauth2-proxy", "", "a prebuilt oauth2-proxy binary to use instead of building one")
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
	scenarios := 10 + 5 + 2 // max throughput, fixed rate, peer
	d := time.Duration(scenarios)*(time.Duration(o.rounds)*o.warmup+o.duration) + o.floodMaxTime
	if o.cachedSessions > 0 {
		d += cachedMaxTime
	}
	return d
}

type env struct {
	dir                             string
	redisAddr                       string
	upstreamAddr                    string
	plainAddr, eddsaAddr, rs256Addr string
	defaultAddr, reuseOffAddr       string
	adminAddr                       string
	// claimsAddr is the EdDSA gateway with claims and rules on, asking the
	// claims stand-in at convexAddr.
	claimsAddr, convexAddr string
	convex                 *claimsStandIn
	caddy                  *proc
	procs                  []*proc

	// The peer, when it could be built: its binary, the OIDC provider it
	// signs in with, its own address, the Caddy site that forward_auths
	// to it, and the session cookie the sign-in gave.
	peerBin            string
	oidcAddr, peerAddr string
	forwardAuthAddr    string
	oidc               *oidcProvider
	peerCookie         string
}

func (e *env) stop() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop()
	}
	if e.oidc != nil {
		e.oidc.stop()
	}
	if e.convex != nil {
		e.convex.stop()
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

	dir, err := os.MkdirTemp("", "convex-auth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir}
	defer e.stop()
	if o.peer {
		// Before the run's deadline starts: a first build takes minutes.
		step("building oauth2-proxy " + peerVersion + " from " + peerModuleDir)
		if e.peerBin, err = buildPeer(ctx, o, dir); err != nil {
			fmt.Fprintf(os.Stderr, "bench: skipping oauth2-proxy, it could not be built: %v\n", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.plannedTime()+runSlack)
	defer cancel()
	if err := e.start(ctx, o); err != nil {
		return err
	}

	rep := &report{opts: o, machine: describeMachine(ctx)}
	fmt.Println(rep.machine)
	if o.cachedSessions > 0 {
		step(fmt.Sprintf("cached sessions: %d sessions, each requested twice through the default gateway", o.cachedSessions))
		c, err := cachedSessions(ctx, e, o.cachedSessions, o.conns)
		if err != nil {
			return fmt.Errorf("cached sessions: %w", err)
		}
		rep.cached = &c
		fmt.Printf("    RSS %s -> %s, live heap %s -> %s, lookups %d then %d (%d last-use writes), statuses %v\n", fmtBytes(c.rssBefore), fmtBytes(c.rssAfter), fmtBytes(c.heapBefore), fmtBytes(c.heapAfter), c.firstLookups, c.secondLookups, c.secondWrites, c.statuses)
	}
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
	ports, err := freePorts(13)
	if err != nil {
		return fmt.Errorf("finding free loopback ports: %w", err)
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	e.redisAddr, e.upstreamAddr, e.plainAddr, e.eddsaAddr, e.rs256Addr, e.adminAddr = addr(0), addr(1), addr(2), addr(3), addr(4), addr(5)
	e.defaultAddr, e.reuseOffAddr = addr(6), addr(7)
	e.claimsAddr, e.convexAddr = addr(11), addr(12)
	if e.peerBin != "" {
		e.oidcAddr, e.peerAddr, e.forwardAuthAddr = addr(8), addr(9), addr(10)
	}

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

	step("starting the claims stand-in on " + e.convexAddr)
	if e.convex, err = startClaimsStandIn(e.convexAddr); err != nil {
		return fmt.Errorf("claims stand-in: %w", err)
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
	for _, a := range []string{e.plainAddr, e.eddsaAddr, e.rs256Addr, e.defaultAddr, e.reuseOffAddr, e.claimsAddr} {
		if err := c.waitListening(ctx, a, startTimeout); err != nil {
			return err
		}
	}
	if e.peerBin != "" {
		if err := e.startPeer(ctx, o); err != nil {
			fmt.Fprintf(os.Stderr, "bench: skipping oauth2-proxy: %v\n", err)
			e.peerCookie = ""
		}
	}
	return nil
}

// startPeer starts the OIDC provider and oauth2-proxy, and signs in.
func (e *env) startPeer(ctx context.Context, o options) error {
	step("starting the OIDC provider on " + e.oidcAddr + " and oauth2-proxy on " + e.peerAddr)
	var err error
	if e.oidc, err = startOIDCProvider(e.oidcAddr); err != nil {
		return fmt.Errorf("OIDC provider: %w", err)
	}
	p, err := startPeer(o, e, e.peerBin)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, p)
	if err := p.waitListening(ctx, e.peerAddr, startTimeout); err != nil {
		return err
	}
	cookie, err := peerSignIn(ctx, e.peerAddr)
	if err != nil {
		return err
	}
	for _, a := range []string{e.peerAddr, e.forwardAuthAddr} {
		if err := checkPeerCookie(ctx, a, cookie); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
	}
	e.peerCookie = cookie
	return nil
}

// caddyfile: plain, the gateway sites (identical but for their key and
// reuse options; all serve one realm, so that one set of seeded sessions is
// good at each, which costs nothing on the request path) and the
// forward_auth site. The transport keeps enough idle upstream connections
// for the generator's.
func (e *env) caddyfile(keys map[issuer.Algorithm]string) string {
	proxy := fmt.Sprintf(`reverse_proxy %s {
		transport http {
			keepalive_idle_conns_per_host 256
		}
	}`, e.upstreamAddr)
	gateway := func(addr, options string) string {
		protect := "protect /loggedin*"
		if addr == e.claimsAddr {
			protect = claimsOptions(e.convexAddr)
		}
		return fmt.Sprintf(`http://%s {
	convex_auth {
		issuer http://%s
		realm %s
		%s
		redis redis://%s/0
		%s
	}
	%s
}
`, addr, addr, benchRealm, options, e.redisAddr, protect, proxy)
	}
	// The default config: a key generated into the storage (EdDSA), every
	// option at its default.
	sites := gateway(e.defaultAddr, "# default options") + "\n" +
		gateway(e.eddsaAddr, "signing_key file "+keys[issuer.EdDSA]) + "\n" +
		gateway(e.rs256Addr, "signing_key file "+keys[issuer.RS256]) + "\n" +
		// token_reuse_margin = token_ttl: a mint on every request.
		gateway(e.reuseOffAddr, "signing_key file "+keys[issuer.EdDSA]+"\n\t\ttoken_reuse_margin 5m") + "\n" +
		// As 4a, with claims in every token and a rule that reads them.
		gateway(e.claimsAddr, "signing_key file "+keys[issuer.EdDSA])
	if e.forwardAuthAddr != "" {
		// The user's setup before the gateway: Caddy asks oauth2-proxy
		// about every request, then proxies it itself.
		sites += fmt.Sprintf(`
http://%s {
	forward_auth %s {
		uri /oauth2/auth
		copy_headers X-Auth-Request-User X-Auth-Request-Email
	}
	%s
}
`, e.forwardAuthAddr, e.peerAddr, proxy)
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

`, e.adminAddr, filepath.Join(e.dir, "storage"), filepath.Join(e.dir, "caddy-runtime.log"), e.plainAddr, proxy) + sites
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
	const roundRobinScenarios = 8
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
	peerRequest := func(addr string) *requestSet {
		return &requestSet{reqs: [][]byte{buildRequest(addr, "/loggedin", e.peerCookie+"; theme=dark")}}
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
		{"2. gateway, open path, no cookie", e.defaultAddr, single(e.defaultAddr, "/", ""), false, true, false},
		{"3. gateway, protected, one hot session, default config", e.defaultAddr, single(e.defaultAddr, "/loggedin", hot), false, true, true},
		{fmt.Sprintf("4. gateway, %d sessions round robin, default config", o.sessions), e.defaultAddr, roundRobin(e.defaultAddr), false, true, true},
		{fmt.Sprintf("4a. gateway, %d sessions round robin, EdDSA", o.sessions), e.eddsaAddr, roundRobin(e.eddsaAddr), false, true, true},
		{fmt.Sprintf("4b. gateway, %d sessions round robin, RS256", o.sessions), e.rs256Addr, roundRobin(e.rs256Addr), false, true, true},
		{fmt.Sprintf("4c. gateway, %d sessions round robin, EdDSA, reuse off (a mint per request)", o.sessions), e.reuseOffAddr, roundRobin(e.reuseOffAddr), false, true, true},
		{"3c. gateway, protected, one hot session, EdDSA, claims and rules on", e.claimsAddr, single(e.claimsAddr, "/loggedin", hot), false, true, true},
		{fmt.Sprintf("4d. gateway, %d sessions round robin, EdDSA, claims and rules on", o.sessions), e.claimsAddr, roundRobin(e.claimsAddr), false, true, true},
		{fmt.Sprintf("5.1 plain reverse_proxy @ %d/s", o.rate), e.plainAddr, single(e.plainAddr, "/loggedin", hot), true, false, false},
		{fmt.Sprintf("5.3 one hot session, default config @ %d/s", o.rate), e.defaultAddr, single(e.defaultAddr, "/loggedin", hot), true, true, true},
		{fmt.Sprintf("5.4 %d sessions, default config @ %d/s", o.sessions, o.rate), e.defaultAddr, roundRobin(e.defaultAddr), true, true, true},
		{fmt.Sprintf("5.4a %d sessions, EdDSA @ %d/s", o.sessions, o.rate), e.eddsaAddr, roundRobin(e.eddsaAddr), true, true, true},
		{fmt.Sprintf("5.4b %d sessions, RS256 @ %d/s", o.sessions, o.rate), e.rs256Addr, roundRobin(e.rs256Addr), true, true, true},
	}
	if e.peerCookie != "" {
		list = append(list,
			scenario{"6a. oauth2-proxy " + peerVersion + " direct, Redis sessions, one session", e.peerAddr, peerRequest(e.peerAddr), false, true, false},
			scenario{"6b. Caddy forward_auth → oauth2-proxy " + peerVersion + ", one session", e.forwardAuthAddr, peerRequest(e.forwardAuthAddr), false, true, false},
		)
	} else if o.peer {
		fmt.Fprintln(os.Stderr, "bench: the oauth2-proxy scenarios (6a, 6b) are skipped: see the message above")
	}
	// Returning users: each session has been seen (looked up, a token
	// minted) before the measured rounds start. Each group is primed just
	// before its rounds: the max-throughput rounds last longer than the
	// session cache's TTL and the token reuse window, so sessions primed at
	// the start would be cold again by the fixed-rate rounds.
	prime := func(fixed bool) {
		if !o.prime {
			return
		}
		for _, s := range list {
			if s.fixedRate == fixed && len(s.reqs.reqs) > 1 && o.selected(s.name) {
				step(fmt.Sprintf("%s: priming its %d sessions", s.name, len(s.reqs.reqs)))
				sendAll(ctx, s.addr, s.reqs.reqs, o.conns)
			}
		}
	}
	// Rounds: the scenarios of a group take turns, each measured for its
	// share of -duration, so that a drift in the machine's load (other
	// processes) falls on plain and gateway alike.
	results := make([]result, len(list))
	minted := make([]int, len(list))
	lookups := make([]int64, len(list))
	writes := make([]int64, len(list))
	slice := o.duration / time.Duration(o.rounds)
	for _, fixed := range []bool{false, true} {
		prime(fixed)
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
				writesBefore, err := lastUseWrites(ctx, rc)
				if err != nil {
					return err
				}
				mintsBefore, err := mintedTokens(e.adminAddr)
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
				distinct, err := upstreamTokens(e.upstreamAddr)
				if err != nil {
					return fmt.Errorf("reading the upstream's token count: %w", err)
				}
				mintsAfter, err := mintedTokens(e.adminAddr)
				if err != nil {
					return err
				}
				n := int(mintsAfter - mintsBefore)
				callsAfter, err := scriptCalls(ctx, rc)
				if err != nil {
					return err
				}
				lookups[i] += callsAfter - callsBefore
				writesAfter, err := lastUseWrites(ctx, rc)
				if err != nil {
					return err
				}
				writes[i] += writesAfter - writesBefore
				fmt.Printf("    %.0f req/s, p50 %s, p99 %s, %d errors, statuses %v, %d tokens minted, %d distinct upstream, %d Redis lookups, %d last-use writes\n", res.rps(), fmtDur(res.percentile(50)), fmtDur(res.percentile(99)), res.errors, res.statuses, n, distinct, callsAfter-callsBefore, writesAfter-writesBefore)
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
			r.writesPerReq = float64(writes[i]) / float64(results[i].total)
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

// mintedTokens reads Caddy's count of minted tokens, all gateway sites
// together (one scenario runs at a time). The upstream's count of distinct
// tokens undercounts: EdDSA signatures are deterministic, so the mints of
// one session within one second (iat has whole seconds) are one token.
func mintedTokens(adminAddr string) (float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("reading Caddy's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	const name = `caddy_convex_auth_tokens_total{kind="minted"} `
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, nil // nothing minted yet: the counter appears with its first mint
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
