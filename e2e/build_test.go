// Package e2e tests the Caddy binary built from xcaddy.toml (make caddy).
// `make test` builds it and passes its path in CONVEX_AUTH_CADDY_BIN.
package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// caddyBinEnv names the environment variable with the path of the built Caddy.
const caddyBinEnv = "CONVEX_AUTH_CADDY_BIN"

// caddyBin returns the path of the Caddy binary under test. Locally the tests
// skip without it; in CI (env CI set) a missing binary fails them, so that
// they cannot be skipped silently.
func caddyBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(caddyBinEnv)
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; CI must run the e2e tests: run them with make test", caddyBinEnv)
		}
		t.Skipf("%s is not set; run make test (or build with make caddy and set it to the binary's path)", caddyBinEnv)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v; build it with make caddy", caddyBinEnv, bin, err)
	}
	return bin
}

// runCaddyCommand runs the Caddy binary bin with args, such as a CLI
// subcommand, and returns its combined output; it fails the test if the
// command fails.
func runCaddyCommand(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("caddy %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestBinaryHasConvexAuthModule(t *testing.T) {
	out := runCaddyCommand(t, caddyBin(t), "list-modules")
	for _, m := range []string{"http.handlers.convex_auth\n", "admin.api.convex_auth\n",
		// Each sign-in provider type is a module of its own.
		"http.convex_auth.providers.anonymous\n", "http.convex_auth.providers.email\n", "http.convex_auth.providers.github\n",
		"http.convex_auth.providers.google\n", "http.convex_auth.providers.oidc\n", "http.convex_auth.providers.password\n",
		"http.convex_auth.providers.apple\n", "http.convex_auth.providers.microsoft\n", "http.convex_auth.providers.gitlab\n",
		"http.convex_auth.providers.discord\n", "http.convex_auth.providers.slack\n", "http.convex_auth.providers.oauth2\n",
		"http.convex_auth.providers.passkey\n"} {
		if !strings.Contains(out, m) {
			t.Errorf("caddy list-modules does not list %s; output:\n%s", strings.TrimSpace(m), out)
		}
	}
}

func TestBinaryIsManifestCaddyVersion(t *testing.T) {
	bin := caddyBin(t)
	// The version to expect is the one xcaddy.toml pins, so bumping Caddy is one line.
	want := manifestCaddyVersion(t)
	// An xcaddy build prints the module version and its checksum, e.g. "v2.11.9 h1:...".
	out := runCaddyCommand(t, bin, "version")
	if fields := strings.Fields(out); len(fields) == 0 || fields[0] != want {
		t.Errorf("caddy version printed %q, want it to start with %s (from xcaddy.toml)", strings.TrimSpace(out), want)
	}
}

// make caddy builds this checkout, so the module's version is (devel).
func TestBinaryModuleVersion(t *testing.T) {
	if got := strings.TrimSpace(runCaddyCommand(t, caddyBin(t), "convex-auth", "version")); got != "(devel)" {
		t.Errorf("caddy convex-auth version printed %q, want (devel) for a build of this checkout", got)
	}
}
