package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeModule creates dir/go.mod declaring modulePath.
func writeModule(t *testing.T, dir, modulePath string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+modulePath+"\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testBase makes a directory with local modules for the manifests below:
// ./ is example.com/root, ./plugin is example.com/plugin, ./nogomod has no go.mod.
func testBase(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	writeModule(t, base, "example.com/root")
	writeModule(t, filepath.Join(base, "plugin"), "example.com/plugin")
	if err := os.Mkdir(filepath.Join(base, "nogomod"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "afile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return base
}

func TestParseManifest(t *testing.T) {
	base := testBase(t)
	manifest := `# comment
caddy  = "v2.11.9"
output = "bin/caddy"

[modules]
"example.com/root" = "."
'example.com/plugin' = "./plugin"
"github.com/mholt/caddy-ratelimit" = "v0.1.0"
"github.com/caddy-dns/cloudflare" = ""
"github.com/example/pinned" = "v0.0.0-20240101000000-abcdefabcdef"
"github.com/example/rc/v3" = "v3.1.0-rc.1"
`
	m, err := ParseManifest("xcaddy.toml", []byte(manifest), base)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if m.Caddy != "v2.11.9" {
		t.Errorf("Caddy = %q, want v2.11.9", m.Caddy)
	}
	if want := filepath.Join(base, "bin", "caddy"); m.Output != want {
		t.Errorf("Output = %q, want %q", m.Output, want)
	}
	wantModules := []Module{
		{Path: "example.com/root", Dir: base},
		{Path: "example.com/plugin", Dir: filepath.Join(base, "plugin")},
		{Path: "github.com/mholt/caddy-ratelimit", Version: "v0.1.0"},
		{Path: "github.com/caddy-dns/cloudflare"},
		{Path: "github.com/example/pinned", Version: "v0.0.0-20240101000000-abcdefabcdef"},
		{Path: "github.com/example/rc/v3", Version: "v3.1.0-rc.1"},
	}
	if !slices.Equal(m.Modules, wantModules) {
		t.Errorf("Modules =\n%+v\nwant (in file order)\n%+v", m.Modules, wantModules)
	}

	wantArgs := []string{
		"build", "v2.11.9",
		"--with", "example.com/root@v0.0.0=" + base,
		"--with", "example.com/plugin@v0.0.0=" + filepath.Join(base, "plugin"),
		"--with", "github.com/mholt/caddy-ratelimit@v0.1.0",
		"--with", "github.com/caddy-dns/cloudflare",
		"--with", "github.com/example/pinned@v0.0.0-20240101000000-abcdefabcdef",
		"--with", "github.com/example/rc/v3@v3.1.0-rc.1",
		"--output", filepath.Join(base, "bin", "caddy"),
	}
	if got := m.XcaddyArgs(); !slices.Equal(got, wantArgs) {
		t.Errorf("XcaddyArgs =\n%q\nwant\n%q", got, wantArgs)
	}
}

func TestParseManifestDefaults(t *testing.T) {
	base := testBase(t)
	m, err := ParseManifest("xcaddy.toml", []byte(`caddy = "v2.11.9"`), base)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if want := filepath.Join(base, "caddy"); m.Output != want {
		t.Errorf("Output = %q, want the default %q", m.Output, want)
	}
	if len(m.Modules) != 0 {
		t.Errorf("Modules = %+v, want none", m.Modules)
	}
	if got, want := m.XcaddyArgs(), []string{"build", "v2.11.9", "--output", filepath.Join(base, "caddy")}; !slices.Equal(got, want) {
		t.Errorf("XcaddyArgs = %q, want %q", got, want)
	}
}

func TestLocalModuleWithMajorVersion(t *testing.T) {
	base := t.TempDir()
	writeModule(t, filepath.Join(base, "v2mod"), "example.com/thing/v2")
	m, err := ParseManifest("xcaddy.toml", []byte("caddy = \"v2.11.9\"\n[modules]\n\"example.com/thing/v2\" = \"./v2mod\"\n"), base)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	// A /v2 module needs a v2 pseudo-version, or go rejects the requirement.
	want := "example.com/thing/v2@v2.0.0=" + filepath.Join(base, "v2mod")
	if got := m.Modules[0].withArg(); got != want {
		t.Errorf("withArg = %q, want %q", got, want)
	}
}

func TestParseManifestErrors(t *testing.T) {
	base := testBase(t)
	const head = "caddy = \"v2.11.9\"\n[modules]\n" // modules entries start on line 3
	tests := []struct {
		name     string
		manifest string
		wantLine int      // 0: the message has no line
		wantMsg  []string // substrings of the message
	}{
		{
			name:     "toml syntax",
			manifest: "caddy = \"v2.11.9\"\noutput = \"./caddy\n",
			wantLine: 2,
			wantMsg:  []string{"invalid TOML"},
		},
		{
			name:     "unknown top-level key",
			manifest: "caddy = \"v2.11.9\"\n\nverison = \"v1\"\n",
			wantLine: 3,
			wantMsg:  []string{"unknown key verison", "caddy, output and [modules]"},
		},
		{
			name:     "unknown table",
			manifest: "caddy = \"v2.11.9\"\n[module]\n\"example.com/root\" = \".\"\n",
			wantLine: 2,
			wantMsg:  []string{"unknown table [module]", "[modules]"},
		},
		{
			name:     "missing caddy",
			manifest: "output = \"./caddy\"\n",
			wantLine: 0,
			wantMsg:  []string{"missing the caddy version", `caddy = "v2.11.9"`},
		},
		{
			name:     "caddy not a string",
			manifest: "# pinned\ncaddy = 2.11\n",
			wantLine: 2,
			wantMsg:  []string{"caddy must be a quoted version tag"},
		},
		{
			name:     "caddy without v",
			manifest: "\ncaddy = \"2.11.9\"\n",
			wantLine: 2,
			wantMsg:  []string{`caddy version "2.11.9" is not a version tag`, `caddy = "v2.11.9"`},
		},
		{
			name:     "caddy incomplete version",
			manifest: "caddy = \"v2.11\"\n",
			wantLine: 1,
			wantMsg:  []string{`"v2.11" is not a version tag`},
		},
		{
			name:     "caddy empty",
			manifest: "output = \"x\"\ncaddy = \"\"\n",
			wantLine: 2,
			wantMsg:  []string{`caddy version "" is not a version tag`},
		},
		{
			name:     "caddy branch name",
			manifest: "caddy = \"master\"\n",
			wantLine: 1,
			wantMsg:  []string{`"master" is not a version tag`},
		},
		{
			name:     "output empty",
			manifest: "caddy = \"v2.11.9\"\noutput = \"\"\n",
			wantLine: 2,
			wantMsg:  []string{"output must be a non-empty quoted path"},
		},
		{
			name:     "output not a string",
			manifest: "caddy = \"v2.11.9\"\noutput = true\n",
			wantLine: 2,
			wantMsg:  []string{"output must be a non-empty quoted path"},
		},
		{
			name:     "modules not a table",
			manifest: "caddy = \"v2.11.9\"\nmodules = \"example.com/root\"\n",
			wantLine: 2,
			wantMsg:  []string{"modules must be a table"},
		},
		{
			name:     "bad module path",
			manifest: head + "\"example.com/root\" = \".\"\nratelimit = \"v0.1.0\"\n",
			wantLine: 4,
			wantMsg:  []string{`malformed module path "ratelimit"`, "write the module path from the module's go.mod"},
		},
		{
			name:     "module path with a bad character",
			manifest: head + "\"github.com/a b/c\" = \"\"\n",
			wantLine: 3,
			wantMsg:  []string{`malformed module path "github.com/a b/c"`},
		},
		{
			name:     "module version in the key",
			manifest: head + "\"github.com/mholt/caddy-ratelimit@v0.1.0\" = \"\"\n",
			wantLine: 3,
			wantMsg:  []string{"put the version on the right", `"github.com/mholt/caddy-ratelimit" = "v0.1.0"`},
		},
		{
			name:     "caddy listed as a module",
			manifest: head + "\n\"github.com/caddyserver/caddy/v2\" = \"v2.10.0\"\n",
			wantLine: 4,
			wantMsg:  []string{"pinned by the top-level caddy key"},
		},
		{
			name:     "module version not a tag",
			manifest: head + "\"github.com/mholt/caddy-ratelimit\" = \"0.1.0\"\n",
			wantLine: 3,
			wantMsg:  []string{`"0.1.0" is not a version tag`, `"v1.2.3"`},
		},
		{
			name:     "module version is a branch",
			manifest: head + "# comment\n\"github.com/mholt/caddy-ratelimit\" = \"main\"\n",
			wantLine: 4,
			wantMsg:  []string{`"main" is not a version tag`},
		},
		{
			name:     "module value not a string",
			manifest: head + "\"github.com/mholt/caddy-ratelimit\" = 1\n",
			wantLine: 3,
			wantMsg:  []string{"the value must be a quoted version tag"},
		},
		{
			name:     "local directory missing",
			manifest: head + "\"example.com/plugin\" = \"./nope\"\n",
			wantLine: 3,
			wantMsg:  []string{"directory ./nope does not exist"},
		},
		{
			name:     "local directory is a file",
			manifest: head + "\"example.com/plugin\" = \"./afile\"\n",
			wantLine: 3,
			wantMsg:  []string{"directory ./afile does not exist"},
		},
		{
			name:     "local directory without go.mod",
			manifest: head + "\"example.com/plugin\" = \"./nogomod\"\n",
			wantLine: 3,
			wantMsg:  []string{"./nogomod has no go.mod"},
		},
		{
			name:     "local directory of another module",
			manifest: head + "\"example.com/other\" = \"./plugin\"\n",
			wantLine: 3,
			wantMsg:  []string{`./plugin/go.mod declares module "example.com/plugin"`},
		},
		{
			name:     "duplicate module",
			manifest: head + "\"example.com/plugin\" = \"./plugin\"\n\"example.com/root\" = \".\"\n'example.com/plugin' = \"v1.0.0\"\n",
			wantLine: 5,
			wantMsg:  []string{"module example.com/plugin is listed twice"},
		},
		{
			name:     "duplicate caddy",
			manifest: "caddy = \"v2.11.9\"\noutput = \"x\"\ncaddy = \"v2.10.0\"\n",
			wantLine: 3,
			wantMsg:  []string{"caddy is set twice"},
		},
		{
			name:     "dotted module key",
			manifest: "caddy = \"v2.11.9\"\nmodules.\"example.com/other\" = \"./plugin\"\n",
			wantLine: 2,
			wantMsg:  []string{`declares module "example.com/plugin"`},
		},
		{
			name:     "inline modules table",
			manifest: "caddy = \"v2.11.9\"\n\nmodules = { \"example.com/other\" = \"./plugin\" }\n",
			wantLine: 3,
			wantMsg:  []string{`declares module "example.com/plugin"`},
		},
		{
			name:     "after a multi-line string",
			manifest: "caddy = \"v2.11.9\"\nnote = \"\"\"\n[modules]\n\"example.com/x\" = 1\n\"\"\"\n",
			wantLine: 2,
			wantMsg:  []string{"unknown key note"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest("xcaddy.toml", []byte(tt.manifest), base)
			if err == nil {
				t.Fatalf("ParseManifest succeeded; want an error at line %d", tt.wantLine)
			}
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is a %T, want *ManifestError", err, err)
			}
			if me.File != "xcaddy.toml" || me.Line != tt.wantLine {
				t.Errorf("error at %s:%d, want xcaddy.toml:%d: %v", me.File, me.Line, tt.wantLine, err)
			}
			msg := err.Error()
			prefix := "xcaddy.toml: "
			if tt.wantLine > 0 {
				prefix = "xcaddy.toml:" + strconv.Itoa(tt.wantLine) + ": "
			}
			if !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if body := strings.TrimPrefix(msg, prefix); body != "" && body[:1] != strings.ToLower(body[:1]) {
				t.Errorf("error %q should start lowercase", msg)
			}
		})
	}
}

func TestLoadManifestMissingFile(t *testing.T) {
	_, err := LoadManifest(filepath.Join(t.TempDir(), "xcaddy.toml"))
	if err == nil || !strings.Contains(err.Error(), "cannot read the build manifest") {
		t.Fatalf("LoadManifest of a missing file: err = %v, want a read error", err)
	}
}

func TestLoadManifestRelativeToFile(t *testing.T) {
	base := testBase(t)
	path := filepath.Join(base, "xcaddy.toml")
	if err := os.WriteFile(path, []byte("caddy = \"v2.11.9\"\n[modules]\n\"example.com/plugin\" = \"./plugin\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatalf("LoadManifest: %v", err)
	}
	if want := filepath.Join(base, "plugin"); m.Modules[0].Dir != want {
		t.Errorf("local module dir = %q, want %q (relative to the manifest)", m.Modules[0].Dir, want)
	}
	if want := filepath.Join(base, "caddy"); m.Output != want {
		t.Errorf("Output = %q, want %q (relative to the manifest)", m.Output, want)
	}
}

// The repository's own manifest must stay valid and build this module from the checkout.
func TestRepositoryManifest(t *testing.T) {
	m, err := LoadManifest(filepath.Join("..", "..", defaultManifest))
	if err != nil {
		t.Fatalf("the repository's %s: %v", defaultManifest, err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	want := Module{Path: "github.com/convex-auth/caddy-convex-auth", Dir: root}
	if !slices.Contains(m.Modules, want) {
		t.Errorf("Modules = %+v, want it to contain %+v", m.Modules, want)
	}
}
