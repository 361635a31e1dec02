package caddymodule

import (
	"runtime/debug"
	"testing"
)

func TestModuleVersion(t *testing.T) {
	const path = "github.com/convex-auth/caddy-convex-auth"
	if got := modulePath(); got != path {
		t.Fatalf("modulePath() = %q, want %q", got, path)
	}
	caddyMain := debug.Module{Path: "caddy", Version: develVersion}
	for _, tc := range []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"release tag", debug.BuildInfo{Main: caddyMain, Deps: []*debug.Module{
			{Path: "github.com/caddyserver/caddy/v2", Version: "v2.11.9"},
			{Path: path, Version: "v1.2.0", Sum: "h1:abc="},
		}}, "v1.2.0"},
		{"pseudo-version", debug.BuildInfo{Main: caddyMain, Deps: []*debug.Module{
			{Path: path, Version: "v0.0.0-20260101120000-abcdef123456"},
		}}, "v0.0.0-20260101120000-abcdef123456"},
		// xcaddy --with path=./dir, and make caddy
		{"local checkout", debug.BuildInfo{Main: caddyMain, Deps: []*debug.Module{
			{Path: path, Version: "v0.0.0-00010101000000-000000000000", Replace: &debug.Module{Path: "/src/caddy-convex-auth", Version: develVersion}},
		}}, develVersion},
		{"relative checkout", debug.BuildInfo{Main: caddyMain, Deps: []*debug.Module{
			{Path: path, Version: "v0.0.0", Replace: &debug.Module{Path: "../caddy-convex-auth"}},
		}}, develVersion},
		{"fork", debug.BuildInfo{Main: caddyMain, Deps: []*debug.Module{
			{Path: path, Version: "v1.2.0", Replace: &debug.Module{Path: "github.com/someone/fork", Version: "v1.2.1"}},
		}}, "v1.2.0 (replaced by github.com/someone/fork v1.2.1)"},
		// a submodule of another module is not this module
		{"similar path", debug.BuildInfo{Main: caddyMain, Deps: []*debug.Module{
			{Path: path + "-extras", Version: "v9.9.9"},
			{Path: path, Version: "v1.0.0"},
		}}, "v1.0.0"},
		{"main module", debug.BuildInfo{Main: debug.Module{Path: path, Version: "v1.3.0"}}, "v1.3.0"},
		{"main module, local", debug.BuildInfo{Main: debug.Module{Path: path, Version: develVersion}}, develVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := moduleVersion(&tc.info, path); got != tc.want {
				t.Fatalf("moduleVersion = %q, want %q", got, tc.want)
			}
		})
	}
}
