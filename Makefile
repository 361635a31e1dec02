# Build, run and test the custom Caddy with the convex_auth module.
#
#   make caddy   build the binary xcaddy.toml describes (./caddy), only when out of date
#   make run     build, then run it with Caddyfile.example
#   make test    build once, then run every Go test (the e2e tests use the binary),
#                then the Node tests
#   make test-go     only the Go tests
#   make test-node   only the Node tests: Convex conformance (conformance/, seconds),
#                    the browser package (clients/js/: vitest, then npm pack
#                    installed into a clean directory: under a minute) and the
#                    Next.js example (examples/nextjs/: its Convex functions
#                    under vitest, seconds, then next build: a minute or two)
#   make test-fuzz   each fuzz target (as go test -list finds them) for FUZZTIME (default 50000x)
#   make test-busy   make test while BUSY_LOOPS shell loops (default: one per core) keep
#                    every core busy, as on a shared or starved machine; prints the time
#   make bench   run the Go benchmarks of every package that has some
#   make bench-load  build, then run the load benchmark against plain reverse_proxy and
#                    oauth2-proxy (bench/; oauth2-proxy is built from bench/oauth2proxy/)
#   make clean   remove the binary

GO ?= go

# The binary's path comes from xcaddy.toml (its output key), as an absolute
# path. The fallback keeps make usable when the manifest is broken; the build
# then reports the manifest error.
CADDY_BIN := $(or $(shell $(GO) run ./cmd/buildcaddy -print-output 2>/dev/null),$(CURDIR)/caddy)

# Files compiled into the binary: each package's Go files and embedded files.
# Tests are left out so that editing a test does not trigger a multi-minute
# Caddy rebuild. The load benchmark (bench/) is not compiled into Caddy.
CADDY_SOURCES := $(filter-out $(CURDIR)/bench/%,$(shell $(GO) list -e -f '{{$$d := .Dir}}{{range .GoFiles}}{{$$d}}/{{.}} {{end}}{{range .EmbedFiles}}{{$$d}}/{{.}} {{end}}' ./... 2>/dev/null))

# The packages whose tests define benchmarks, found rather than listed, so that
# moving code between packages moves its benchmarks with it.
BENCH_PACKAGES = $(sort $(dir $(shell grep -rlE --include='*_test.go' --exclude-dir=node_modules '^func Benchmark[A-Z0-9_]' .)))

.PHONY: caddy run test test-busy test-fuzz test-go test-node test-conformance test-client-js test-nextjs bench bench-load clean

caddy: $(CADDY_BIN)

$(CADDY_BIN): $(CADDY_SOURCES) go.mod go.sum xcaddy.toml
	$(GO) run ./cmd/buildcaddy -manifest xcaddy.toml

run: caddy
	$(CADDY_BIN) run --config Caddyfile.example --adapter caddyfile

test: test-go
	@$(MAKE) --no-print-directory test-node
	@$(MAKE) --no-print-directory test-fuzz

# The suite must pass on a machine whose cores other processes keep busy. The
# loops are stopped however make test ends (failure, Ctrl-C, kill): a
# non-interactive shell's background jobs ignore SIGINT, so the trap kills
# them by their process IDs.
BUSY_LOOPS ?= $(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)

test-busy:
	@pids=; trap 'kill $$pids 2>/dev/null' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	i=0; while [ $$i -lt $(BUSY_LOOPS) ]; do sh -c 'while :; do :; done' & pids="$$pids $$!"; i=$$((i+1)); done; \
	echo "make test with $(BUSY_LOOPS) busy loops (pids$$pids)"; start=$$(date +%s); \
	rc=0; $(MAKE) --no-print-directory test || rc=$$?; \
	echo "make test with $(BUSY_LOOPS) busy loops: exit $$rc after $$(( $$(date +%s) - start )) s"; exit $$rc

# Each fuzz target runs for FUZZTIME (go test takes one -fuzz per run). The
# budget is a count of executions, not a duration: Go 1.26's fuzz coordinator
# can fail a duration-bounded run with "context deadline exceeded" when the
# deadline fires while a worker is mid-call (golang/go#75804, fixed in 1.27),
# which says nothing about the target. 50000 runs take 3 to 20 s per target
# on a 2-core machine. The
# targets are listed by go test itself, in the packages whose tests define a
# Fuzz function, so a new target runs without editing this file. FUZZ_TARGETS
# is recursive (=): it is computed only when test-fuzz runs.
FUZZTIME ?= 50000x
FUZZ_PACKAGES = $(sort $(dir $(shell grep -rlE --include='*_test.go' --exclude-dir=node_modules '^func Fuzz[A-Z0-9_]' .)))
FUZZ_TARGETS = $(shell $(GO) test -list '^Fuzz' $(FUZZ_PACKAGES) | \
	awk '/^Fuzz/ { names = names " " $$0; next } /^ok / { n = split(names, a, " "); for (i = 1; i <= n; i++) print $$2 ":" a[i]; names = "" } /^FAIL/ { print "list-failed" }')

test-fuzz:
	@set -e; targets="$(FUZZ_TARGETS)"; \
	case " $$targets " in *" list-failed "*|"  ") \
		echo "listing the fuzz targets failed: run go test -list '^Fuzz' $(FUZZ_PACKAGES) and fix what it reports" >&2; exit 1;; \
	esac; \
	for t in $$targets; do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done

# The browser tests (e2e/browser_test.go, e2e/gateway_client_test.go) run
# Node with playwright-core, the second on a page bundled from clients/js/;
# the rotation test (e2e/rotation_test.go) runs conformance/'s jose; the
# Convex events test (e2e/convex_events_test.go) runs examples/nextjs/'s vitest;
# the import test (e2e/import_test.go) hashes with e2e/incumbents/' packages.
test-go: caddy e2e/browser/node_modules/.package-lock.json conformance/node_modules/.package-lock.json clients/js/node_modules/.package-lock.json examples/nextjs/node_modules/.package-lock.json e2e/incumbents/node_modules/.package-lock.json
	CONVEX_AUTH_CADDY_BIN=$(CADDY_BIN) $(GO) test -race -count=1 ./...

# Each Node package is installed from its lock file (npm ci) when the lock
# file is newer than the install.
%/node_modules/.package-lock.json: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund

# npm ci in clients/js builds it (its prepare script). The example installs
# it as a copy (install-links), so it is installed again when the package
# changes.
CLIENT_JS_SOURCES := $(wildcard clients/js/src/*) clients/js/package.json clients/js/tsconfig.json clients/js/tsconfig.build.json
examples/nextjs/node_modules/.package-lock.json: clients/js/node_modules/.package-lock.json $(CLIENT_JS_SOURCES)

test-node: test-conformance test-client-js test-nextjs

test-conformance: caddy conformance/node_modules/.package-lock.json
	cd conformance && CONVEX_AUTH_CADDY_BIN=$(CADDY_BIN) node --test

# Type-check, then the logic under vitest and the npm pack check.
test-client-js: clients/js/node_modules/.package-lock.json
	cd clients/js && ./node_modules/.bin/tsc -p tsconfig.json && ./node_modules/.bin/vitest run

# The example's Convex functions (convex/*.spec.ts, convex-test under vitest,
# seconds) first, then the app behind the gateway (test/*.test.mjs).
# standin/node is Node 22 for the convex CLI of the codegen check.
test-nextjs: caddy examples/nextjs/node_modules/.package-lock.json examples/nextjs/standin/node/node_modules/.package-lock.json
	cd examples/nextjs && ./node_modules/.bin/vitest run
	cd examples/nextjs && CONVEX_AUTH_CADDY_BIN=$(CADDY_BIN) NEXT_TELEMETRY_DISABLED=1 node --test

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_PACKAGES)

# BENCH_FLAGS passes options to the load benchmark, e.g.
# make bench-load BENCH_FLAGS='-duration 30s -flood 200000'
bench-load: caddy
	$(GO) run ./bench -caddy $(CADDY_BIN) $(BENCH_FLAGS)

clean:
	rm -f $(CADDY_BIN)
