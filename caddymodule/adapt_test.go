package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var updateGolden = flag.Bool("update", false, "rewrite the JSON half of testdata/adapt/*.caddyfiletest")

// TestCaddyfileAdapt pins the JSON that `caddy adapt` makes of each
// testdata/adapt/*.caddyfiletest: a Caddyfile, a ---------- line, the JSON.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfileText, expected, ok := strings.Cut(string(data), "----------")
			if !ok {
				t.Fatalf("%s has no ---------- separator", file)
			}
			caddyfileText = strings.TrimSpace(caddyfileText) + "\n"
			if *updateGolden {
				adapter := caddyconfig.GetAdapter("caddyfile")
				out, warnings, err := adapter.Adapt([]byte(caddyfileText), map[string]any{"filename": "Caddyfile"})
				if err != nil {
					t.Fatalf("adapting: %v", err)
				}
				for _, w := range warnings {
					t.Logf("warning: %s", w.Message)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, out, "", "\t"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(caddyfileText+"----------\n"+pretty.String()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !caddytest.CompareAdapt(t, file, caddyfileText, "caddyfile", strings.TrimSpace(expected)) {
				t.Errorf("%s: adapted JSON differs; run go test ./caddymodule -run TestCaddyfileAdapt -update and review the diff", file)
			}
		})
	}
}
