package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeManifest(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "xcaddy.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunPrint(t *testing.T) {
	base := testBase(t)
	path := writeManifest(t, base, `caddy = "v2.11.9"
output = "out dir/caddy"
[modules]
"example.com/root" = "."
"github.com/mholt/caddy-ratelimit" = "v0.1.0"
`)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-manifest", path, "-print"}, &stdout, &stderr); err != nil {
		t.Fatalf("run -print: %v (stderr: %s)", err, stderr.String())
	}
	want := "go tool xcaddy build v2.11.9" +
		" --with example.com/root@v0.0.0=" + base +
		" --with github.com/mholt/caddy-ratelimit@v0.1.0" +
		" --output '" + filepath.Join(base, "out dir", "caddy") + "'\n"
	if stdout.String() != want {
		t.Errorf("run -print printed\n%s\nwant\n%s", stdout.String(), want)
	}
}

func TestRunPrintOutput(t *testing.T) {
	base := testBase(t)
	path := writeManifest(t, base, "caddy = \"v2.11.9\"\noutput = \"bin/caddy\"\n")
	var stdout bytes.Buffer
	if err := run([]string{"-manifest", path, "-print-output"}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatalf("run -print-output: %v", err)
	}
	if got, want := stdout.String(), filepath.Join(base, "bin", "caddy")+"\n"; got != want {
		t.Errorf("run -print-output printed %q, want %q", got, want)
	}
}

func TestRunErrors(t *testing.T) {
	base := testBase(t)
	bad := writeManifest(t, base, "caddy = \"v2.11.9\"\n[modules]\nratelimit = \"\"\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"manifest error names file and line", []string{"-manifest", bad, "-print"}, bad + ":3: malformed module path"},
		{"missing manifest", []string{"-manifest", filepath.Join(base, "none.toml")}, "cannot read the build manifest"},
		{"stray arguments", []string{"-manifest", bad, "build"}, "unexpected arguments"},
		{"unknown flag", []string{"-verbose"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) error = %v, want one containing %q", tt.args, err, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("run(%q) printed %q on failure, want nothing", tt.args, stdout.String())
			}
		})
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"go", "build", "a b", "it's", "", "x=/p@v1.0.0"})
	want := `go build 'a b' 'it'\''s' '' x=/p@v1.0.0`
	if got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
}
