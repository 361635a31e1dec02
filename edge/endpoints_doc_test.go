package edge

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// authPathLiteral matches a path under /auth/ written in Go source.
var authPathLiteral = regexp.MustCompile(`"(/auth/[A-Za-z0-9_/.-]*)"`)

// TestEndpointTableListsEveryPath: every /auth/ path the module's code
// names (the endpoints edge, the sign-in service and the admin API serve)
// is in the endpoint table of docs/configuration.md.
func TestEndpointTableListsEveryPath(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "\n## Endpoints\n")
	if !ok {
		t.Fatal("docs/configuration.md has no ## Endpoints section")
	}
	table, _, _ = strings.Cut(table, "\n## ")

	found := map[string]string{} // path -> a file naming it
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", "examples", "testdata", ".git",
				"idptest": // the identity providers' own endpoints (Apple's /auth/token)
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range authPathLiteral.FindAllStringSubmatch(string(src), -1) {
			found[strings.TrimSuffix(m[1], "/")] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 10 {
		t.Fatalf("found only %d /auth/ paths in the source: %v", len(found), found)
	}
	for p, file := range found {
		if p == "/auth" {
			continue // the prefix itself
		}
		if !strings.Contains(table, p) {
			t.Errorf("%s serves %s, which the endpoint table of docs/configuration.md does not list", file, p)
		}
	}
}
