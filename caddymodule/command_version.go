package caddymodule

import (
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/mod/modfile"
)

// develVersion is what Go records for a module built from a local checkout.
const develVersion = "(devel)"

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Prints the version of the convex_auth module built into this Caddy",
		Long: `
Prints the version of the convex_auth module in this binary, from its build
information: a release tag (v1.2.0), a pseudo-version for an untagged commit
(v0.0.0-20260101120000-abcdef123456), or (devel) for a build from a local
checkout (xcaddy's --with module=./path).
`,
		Args: cobra.NoArgs,
		RunE: runCommand(func(caddycmd.Flags) error {
			info, ok := debug.ReadBuildInfo()
			if !ok {
				return fmt.Errorf("this binary carries no build information: build it with xcaddy or go build in module mode")
			}
			_, err := fmt.Println(moduleVersion(info, modulePath()))
			return err
		}),
	}
}

// modulePath is the path of the module this package belongs to, as the
// build information names it: this package's import path without its last
// element, so it follows the module when it is renamed or forked.
func modulePath() string {
	pkg := reflect.TypeFor[Handler]().PkgPath()
	return pkg[:strings.LastIndexByte(pkg, '/')]
}

// moduleVersion is the version of module path in info: the main module's
// (when this repository is built directly), else its dependency entry's,
// where a local directory replacement reads (devel) and a replacement by
// another module names it.
func moduleVersion(info *debug.BuildInfo, path string) string {
	if info.Main.Path == path {
		if info.Main.Version == "" {
			return develVersion
		}
		return info.Main.Version
	}
	for _, dep := range info.Deps {
		if dep.Path != path {
			continue
		}
		switch r := dep.Replace; {
		case r == nil:
			return dep.Version
		case modfile.IsDirectoryPath(r.Path):
			return develVersion
		default:
			return fmt.Sprintf("%s (replaced by %s %s)", dep.Version, r.Path, r.Version)
		}
	}
	return develVersion
}
