// Command buildcaddy builds a custom Caddy binary from the build manifest
// (xcaddy.toml) by running xcaddy through `go tool xcaddy`, the version pinned
// as a tool dependency in go.mod. Run it from the repository root:
//
//	go run ./cmd/buildcaddy                  # build as xcaddy.toml says
//	go run ./cmd/buildcaddy -print           # show the xcaddy command only
//	go run ./cmd/buildcaddy -print-output    # show the binary's path only
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/mod/module"
)

const defaultManifest = "xcaddy.toml"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "buildcaddy:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("buildcaddy", flag.ContinueOnError)
	flags.SetOutput(stderr)
	manifestPath := flags.String("manifest", defaultManifest, "the build manifest to read")
	printOnly := flags.Bool("print", false, "print the xcaddy command instead of running it")
	printOutput := flags.Bool("print-output", false, "print the absolute path of the binary the manifest builds, and exit")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; the manifest says what to build (see -help)", flags.Args())
	}

	m, err := LoadManifest(*manifestPath)
	if err != nil {
		return err
	}
	if *printOutput {
		_, err := fmt.Fprintln(stdout, m.Output)
		return err
	}
	goArgs := append([]string{"tool", "xcaddy"}, m.XcaddyArgs()...)
	if *printOnly {
		_, err := fmt.Fprintln(stdout, shellJoin(append([]string{"go"}, goArgs...)))
		return err
	}

	// xcaddy logs its progress to stderr; pass both streams through as they come.
	cmd := exec.Command("go", goArgs...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("xcaddy build failed (%v); its output above says why%s", err, localModuleHint(m))
	}
	return nil
}

// localModuleHint helps with the most puzzling failure: when a package of a
// local module is missing or broken, go looks for another module that provides
// it and reports the module proxy's refusal instead of the real problem.
func localModuleHint(m *Manifest) string {
	var dirs []string
	for _, mod := range m.Modules {
		if mod.Dir != "" {
			dirs = append(dirs, mod.Dir)
		}
	}
	if len(dirs) == 0 {
		return ""
	}
	return fmt.Sprintf("; if it names a package of a local module, check that `go build ./...` passes in %s", strings.Join(dirs, ", "))
}

// XcaddyArgs returns the arguments for `xcaddy` that build what m describes.
func (m *Manifest) XcaddyArgs() []string {
	args := []string{"build", m.Caddy}
	for _, mod := range m.Modules {
		args = append(args, "--with", mod.withArg())
	}
	return append(args, "--output", m.Output)
}

// withArg is the module's xcaddy --with value: path, path@version or
// path@version=dir.
func (mod Module) withArg() string {
	switch {
	case mod.Dir != "":
		// xcaddy runs `go get path` even for a replaced module, which asks the
		// module proxy for the latest version; for an unpublished module the
		// proxy refuses and the build stops. Naming a version (vN.0.0, a
		// placeholder for the requirement the directory replaces) makes go
		// resolve it through the replacement without asking the proxy. It is
		// the version docs/install.md shows for a local checkout, so make
		// caddy and that line compile the module alike (one build cache).
		_, pathMajor, _ := module.SplitPathVersion(mod.Path)
		major := strings.TrimPrefix(module.PathMajorPrefix(pathMajor), "v")
		if major == "" {
			major = "0"
		}
		return mod.Path + "@v" + major + ".0.0=" + mod.Dir
	case mod.Version != "":
		return mod.Path + "@" + mod.Version
	default:
		return mod.Path
	}
}

// shellJoin quotes args for a POSIX shell where needed, for -print.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=@:+,") == "" {
			quoted[i] = a
		} else {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}
