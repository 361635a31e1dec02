package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/mod/modfile"
)

// installDoc is the page whose xcaddy lines TestInstallWithXcaddy runs.
const installDoc = "../docs/install.md"

// documentedXcaddyLines returns the `xcaddy build` lines of docs/install.md.
func documentedXcaddyLines(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile(installDoc)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "xcaddy build ") {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestInstallWithXcaddy builds Caddy the way docs/install.md tells a user
// to from a local checkout, with the xcaddy go.mod pins, run from the
// checkout's parent directory, and checks what the page says to check. It
// is one more xcaddy build per make test, mostly out of the Go build cache
// that make caddy filled (the same Caddy, dependencies and flags).
func TestInstallWithXcaddy(t *testing.T) {
	caddyBin(t) // runs where the other tests of the built binary run: make test, and always in CI
	if testing.Short() {
		t.Skip("builds Caddy with xcaddy: not in -short")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	modPath := modulePathOf(t, filepath.Join(root, "go.mod"))
	caddyVersion := manifestCaddyVersion(t)

	// The page's two lines: a release, and a local checkout built as shown.
	var release, local []string
	for _, line := range documentedXcaddyLines(t) {
		f := strings.Fields(line)
		if len(f) != 5 || f[1] != "build" || f[3] != "--with" {
			t.Fatalf("%s: %q is not `xcaddy build <caddy> --with <module>`", installDoc, line)
		}
		if f[2] != caddyVersion {
			t.Fatalf("%s: %q builds Caddy %s; xcaddy.toml builds %s: keep them the same", installDoc, line, f[2], caddyVersion)
		}
		if !strings.HasPrefix(f[4], modPath+"@") {
			t.Fatalf("%s: %q does not name the module %s with a version", installDoc, line, modPath)
		}
		if strings.Contains(f[4], "=") {
			local = f
		} else {
			release = f
		}
	}
	if release == nil || release[4] != modPath+"@<version>" {
		t.Fatalf("%s has no `xcaddy build %s --with %s@<version>` line", installDoc, caddyVersion, modPath)
	}
	if local == nil {
		t.Fatalf("%s has no xcaddy line for a local checkout (--with %s@…=./path)", installDoc, modPath)
	}
	withModule, checkout, _ := strings.Cut(local[4], "=")
	if !strings.HasPrefix(checkout, "./") || strings.Contains(checkout[2:], "/") {
		t.Fatalf("%s: the local line's checkout %q is not a directory beside the one xcaddy runs in", installDoc, checkout)
	}

	xcaddy := pinnedXcaddy(t, root)
	out := filepath.Join(t.TempDir(), "caddy")
	args := []string{"build", local[2], "--with", withModule + "=./" + filepath.Base(root), "--output", out}
	cmd := exec.Command(xcaddy, args...)
	cmd.Dir = filepath.Dir(root)
	start := time.Now()
	if log, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xcaddy %s (in %s): %v\n%s", strings.Join(args, " "), cmd.Dir, err, log)
	}
	t.Logf("xcaddy %s took %s", strings.Join(args, " "), time.Since(start).Round(time.Second))

	modules := runCaddyCommand(t, out, "list-modules")
	for _, m := range []string{"http.handlers.convex_auth", "admin.api.convex_auth"} {
		if !strings.Contains(modules, m+"\n") {
			t.Errorf("list-modules of the xcaddy build does not list %s:\n%s", m, modules)
		}
	}
	if got := strings.TrimSpace(runCaddyCommand(t, out, "convex-auth", "version")); got != "(devel)" {
		t.Errorf("caddy convex-auth version of a local-checkout build printed %q, want (devel)", got)
	}
	if got := strings.Fields(runCaddyCommand(t, out, "version")); len(got) == 0 || got[0] != caddyVersion {
		t.Errorf("caddy version printed %q, want %s first", got, caddyVersion)
	}
}

// pinnedXcaddy is the path of the xcaddy binary go.mod pins as a tool,
// built (or found in the build cache) by `go tool -n`.
func pinnedXcaddy(t *testing.T, root string) string {
	t.Helper()
	cmd := exec.Command("go", "tool", "-n", "xcaddy")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool -n xcaddy: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func modulePathOf(t *testing.T, goMod string) string {
	t.Helper()
	data, err := os.ReadFile(goMod)
	if err != nil {
		t.Fatal(err)
	}
	if p := modfile.ModulePath(data); p != "" {
		return p
	}
	t.Fatalf("%s names no module", goMod)
	return ""
}

// manifestCaddyVersion is the Caddy version xcaddy.toml builds.
func manifestCaddyVersion(t *testing.T) string {
	t.Helper()
	var manifest struct {
		Caddy string `toml:"caddy"`
	}
	if _, err := toml.DecodeFile(filepath.Join("..", "xcaddy.toml"), &manifest); err != nil {
		t.Fatalf("reading the build manifest: %v", err)
	}
	if manifest.Caddy == "" {
		t.Fatal("xcaddy.toml has no caddy version")
	}
	return manifest.Caddy
}
