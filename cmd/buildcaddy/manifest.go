package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Manifest keys and defaults.
const (
	keyCaddy   = "caddy"
	keyOutput  = "output"
	keyModules = "modules"

	defaultOutput = "./caddy"

	// caddyModulePrefix is Caddy's own module path (any major version); Caddy is
	// pinned by the caddy key and xcaddy adds it, so it may not be listed as a module.
	caddyModulePrefix = "github.com/caddyserver/caddy"

	exampleCaddyLine  = `caddy = "v2.11.9"`
	exampleModuleLine = `"github.com/mholt/caddy-ratelimit" = "v0.1.0"`
)

// Manifest is a validated build manifest (xcaddy.toml).
type Manifest struct {
	File    string   // the file it was read from, as named to LoadManifest
	Caddy   string   // Caddy's version tag, e.g. v2.11.9
	Output  string   // absolute path of the binary to write
	Modules []Module // in the order the file lists them
}

// Module is one module to build into Caddy.
type Module struct {
	Path    string // module path, e.g. github.com/mholt/caddy-ratelimit
	Version string // version tag; "" means the latest (or, with Dir, the local copy)
	Dir     string // absolute path of a local checkout that replaces the module; "" if none
}

// ManifestError is a problem in the manifest, located by file and line.
type ManifestError struct {
	File string
	Line int // 1-based; 0 when the problem has no line (a missing key)
	Msg  string
}

func (e *ManifestError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadManifest reads and validates the manifest at path. Relative paths in it
// (output, local module directories) are relative to the manifest's directory.
func LoadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the build manifest: %w", err)
	}
	return ParseManifest(path, data, filepath.Dir(path))
}

// rawManifest takes any TOML type so that a wrong type gets our own message
// with a line number instead of the decoder's.
type rawManifest struct {
	Caddy   any `toml:"caddy"`
	Output  any `toml:"output"`
	Modules any `toml:"modules"`
}

// ParseManifest validates the manifest text data; file names it in errors and
// baseDir is the directory its relative paths start from.
func ParseManifest(file string, data []byte, baseDir string) (*Manifest, error) {
	var raw rawManifest
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, tomlError(file, err)
	}
	fail := func(key toml.Key, format string, args ...any) error {
		return &ManifestError{File: file, Line: keyLine(data, key), Msg: fmt.Sprintf(format, args...)}
	}

	// Keys under known tables show up as undecoded because they decode into
	// `any`; only top-level names we do not know are mistakes.
	for _, k := range md.Undecoded() {
		if k[0] == keyCaddy || k[0] == keyOutput || k[0] == keyModules {
			continue
		}
		what := "key " + k[0]
		if md.Type(k[0]) == "Hash" {
			what = "table [" + k[0] + "]"
		}
		return nil, fail(k[:1], "unknown %s; the manifest takes %s, %s and [%s]", what, keyCaddy, keyOutput, keyModules)
	}

	m := &Manifest{File: file}

	if !md.IsDefined(keyCaddy) {
		return nil, &ManifestError{File: file, Msg: fmt.Sprintf("missing the caddy version; add a line like %s", exampleCaddyLine)}
	}
	caddyVersion, ok := raw.Caddy.(string)
	if !ok {
		return nil, fail(toml.Key{keyCaddy}, "caddy must be a quoted version tag, like %s", exampleCaddyLine)
	}
	if !isVersionTag(caddyVersion) {
		return nil, fail(toml.Key{keyCaddy}, "caddy version %q is not a version tag; write it like %s", caddyVersion, exampleCaddyLine)
	}
	m.Caddy = caddyVersion

	output := defaultOutput
	if md.IsDefined(keyOutput) {
		s, ok := raw.Output.(string)
		if !ok || strings.TrimSpace(s) == "" {
			return nil, fail(toml.Key{keyOutput}, "output must be a non-empty quoted path, like output = %q", defaultOutput)
		}
		output = s
	}
	if m.Output, err = absFrom(baseDir, output); err != nil {
		return nil, fail(toml.Key{keyOutput}, "cannot resolve output %q: %v", output, err)
	}

	if md.IsDefined(keyModules) {
		table, ok := raw.Modules.(map[string]any)
		if !ok {
			return nil, fail(toml.Key{keyModules}, "modules must be a table: a [modules] line, then one line per module like %s", exampleModuleLine)
		}
		for _, path := range moduleOrder(md, table) {
			key := toml.Key{keyModules, path}
			mod, msg := parseModule(path, table[path], baseDir)
			if msg != "" {
				return nil, fail(key, "%s", msg)
			}
			m.Modules = append(m.Modules, mod)
		}
	}
	return m, nil
}

// parseModule validates one [modules] entry; a non-empty msg says what is wrong.
func parseModule(path string, value any, baseDir string) (mod Module, msg string) {
	if strings.Contains(path, "@") {
		p, v, _ := strings.Cut(path, "@")
		return mod, fmt.Sprintf("module %q: put the version on the right, like %q = %q", path, p, v)
	}
	if err := module.CheckPath(path); err != nil {
		return mod, fmt.Sprintf("%v; write the module path from the module's go.mod, like %s", err, exampleModuleLine)
	}
	if path == caddyModulePrefix || strings.HasPrefix(path, caddyModulePrefix+"/") {
		return mod, fmt.Sprintf("module %s: caddy itself is pinned by the top-level caddy key; remove this line", path)
	}
	s, ok := value.(string)
	if !ok {
		return mod, fmt.Sprintf(`module %s: the value must be a quoted version tag ("v1.2.3"), a local directory ("./dir" or "/dir") or "" for the latest`, path)
	}
	mod.Path = path
	switch {
	case s == "":
		return mod, ""
	case isLocalDir(s):
		dir, msg := checkLocalModule(path, s, baseDir)
		mod.Dir = dir
		return mod, msg
	case !isVersionTag(s):
		return mod, fmt.Sprintf(`module %s: %q is not a version tag; write a tag like "v1.2.3", a local directory starting with "." or "/", or "" for the latest`, path, s)
	}
	mod.Version = s
	return mod, ""
}

// checkLocalModule checks that dir (as written in the manifest) is a checkout
// of module path and returns its absolute path.
func checkLocalModule(path, dir, baseDir string) (abs, msg string) {
	abs, err := absFrom(baseDir, dir)
	if err != nil {
		return "", fmt.Sprintf("module %s: cannot resolve directory %q: %v", path, dir, err)
	}
	info, err := os.Stat(abs)
	if err != nil || !info.IsDir() {
		return "", fmt.Sprintf("module %s: directory %s does not exist; give the path of a checkout of the module, relative to the manifest", path, dir)
	}
	goMod, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil {
		return "", fmt.Sprintf("module %s: %s has no go.mod; give the module's root directory", path, dir)
	}
	if declared := modfile.ModulePath(goMod); declared != path {
		return "", fmt.Sprintf("module %s: %s/go.mod declares module %q; use that path as the key or point at the right directory", path, dir, declared)
	}
	return abs, ""
}

// isVersionTag reports whether v is a full semantic version tag such as v1.2.3,
// v1.2.3-rc.1 or a pseudo-version; "v1.2" and "1.2.3" are not.
func isVersionTag(v string) bool {
	return semver.IsValid(v) && semver.Canonical(v)+semver.Build(v) == v
}

func isLocalDir(s string) bool {
	return strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") || filepath.IsAbs(s)
}

func absFrom(baseDir, p string) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	return filepath.Abs(p)
}

// moduleOrder returns the [modules] keys in the order the file lists them, so
// that builds and printed commands are reproducible.
func moduleOrder(md toml.MetaData, table map[string]any) []string {
	var order []string
	seen := make(map[string]bool, len(table))
	for _, k := range md.Keys() {
		if len(k) == 2 && k[0] == keyModules && !seen[k[1]] {
			if _, ok := table[k[1]]; ok {
				order = append(order, k[1])
				seen[k[1]] = true
			}
		}
	}
	var rest []string
	for p := range table {
		if !seen[p] {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	return append(order, rest...)
}

// tomlError turns a decoder error into a ManifestError at the decoder's line.
func tomlError(file string, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &ManifestError{File: file, Msg: "invalid TOML: " + err.Error()}
	}
	msg := "invalid TOML: " + pe.Message
	// The decoder reports a repeated key as a syntax error; say it in our terms.
	if strings.Contains(pe.Message, "already been defined") {
		if k, ok := strings.CutPrefix(pe.LastKey, keyModules+"."); ok {
			msg = fmt.Sprintf("module %s is listed twice; keep one line for it", unquoteKey(k))
		} else {
			msg = fmt.Sprintf("%s is set twice; keep one", pe.LastKey)
		}
	}
	return &ManifestError{File: file, Line: pe.Position.Line, Msg: msg}
}

func unquoteKey(k string) string {
	if s, err := strconv.Unquote(k); err == nil {
		return s
	}
	return k
}

// keyLine finds the line that defines key in the TOML text, or failing that the
// line of its nearest defined parent (for example an inline table). It returns
// 0 when it finds neither. The decoder keeps key positions private, so this
// reads table headers and "key =" lines itself; that is all a manifest needs.
func keyLine(data []byte, key toml.Key) int {
	var table []string
	best, bestLen := 0, 0
	inMultiline := ""
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		// Skip the inside of multi-line strings: their lines are not keys.
		if inMultiline != "" {
			if strings.Count(s, inMultiline)%2 == 1 {
				inMultiline = ""
			}
			continue
		}
		var full []string
		switch {
		case s == "" || s[0] == '#':
			continue
		case s[0] == '[':
			parts, _ := parseDottedKey(strings.TrimLeft(s, "["))
			table = parts
			full = parts
		default:
			parts, rest := parseDottedKey(s)
			if len(parts) == 0 || !strings.HasPrefix(strings.TrimSpace(rest), "=") {
				continue
			}
			full = append(slices.Clone(table), parts...)
			for _, q := range []string{`"""`, `'''`} {
				if strings.Count(rest, q)%2 == 1 {
					inMultiline = q
				}
			}
		}
		if slices.Equal(full, key) {
			return i + 1
		}
		if n := len(full); n > bestLen && n < len(key) && slices.Equal(full, key[:n]) {
			best, bestLen = i+1, n
		}
	}
	return best
}

// parseDottedKey reads a TOML key (bare, "basic" or 'literal' parts joined by
// dots) from the start of s and returns its parts and the text after it.
func parseDottedKey(s string) (parts []string, rest string) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return parts, s
		}
		var part string
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return parts, s
			}
			unq, err := strconv.Unquote(s[:end+1])
			if err != nil {
				unq = s[1:end]
			}
			part, s = unq, s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return parts, s
			}
			part, s = s[1:end+1], s[end+2:]
		default:
			end := 0
			for end < len(s) && isBareKeyChar(s[end]) {
				end++
			}
			if end == 0 {
				return parts, s
			}
			part, s = s[:end], s[end:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return parts, s
		}
		s = s[1:]
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
