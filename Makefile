# Build, run and test the custom Caddy with the convex_auth module.
#
#   make caddy   build the binary xcaddy.toml describes (./caddy), only when out of date
#   make run     build, then run it with Caddyfile.example
#   make test    build once, then run every Go test (the e2e tests use the binary)
#   make bench   run the benchmarks
#   make clean   remove the binary

GO ?= go

# The binary's path comes from xcaddy.toml (its output key), as an absolute
# path. The fallback keeps make usable when the manifest is broken; the build
# then reports the manifest error.
CADDY_BIN := $(or $(shell $(GO) run ./cmd/buildcaddy -print-output 2>/dev/null),$(CURDIR)/caddy)

# Files compiled into the binary: each package's Go files and embedded files.
# Tests are left out so that editing a test does not trigger a multi-minute
# Caddy rebuild.
CADDY_SOURCES := $(shell $(GO) list -e -f '{{$$d := .Dir}}{{range .GoFiles}}{{$$d}}/{{.}} {{end}}{{range .EmbedFiles}}{{$$d}}/{{.}} {{end}}' ./... 2>/dev/null)

BENCH_PACKAGES := ./issuer ./session ./caddymodule

.PHONY: caddy run test bench clean

caddy: $(CADDY_BIN)

$(CADDY_BIN): $(CADDY_SOURCES) go.mod go.sum xcaddy.toml
	$(GO) run ./cmd/buildcaddy -manifest xcaddy.toml

run: caddy
	$(CADDY_BIN) run --config Caddyfile.example --adapter caddyfile

test: caddy
	CONVEX_AUTH_CADDY_BIN=$(CADDY_BIN) $(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_PACKAGES)

clean:
	rm -f $(CADDY_BIN)
