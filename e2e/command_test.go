package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runCaddyCLI runs the binary with args in env and returns stdout, stderr
// and whether it succeeded.
func runCaddyCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	cmd := exec.Command(caddyBin(t), args...)
	cmd.Env = env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		if _, exited := err.(*exec.ExitError); !exited {
			t.Fatalf("caddy %s: %v", strings.Join(args, " "), err)
		}
	}
	return out.String(), errOut.String(), err == nil
}

var staticJWKSPattern = regexp.MustCompile(`jwks: "data:text/plain;charset=utf-8;base64,([^"]+)",\s*algorithm: "([^"]+)"`)

// staticJWKS returns the kids of the JWKS embedded in a --static config, and its algorithm.
func staticJWKS(t *testing.T, config string) ([]string, string) {
	t.Helper()
	m := staticJWKSPattern.FindStringSubmatch(config)
	if m == nil {
		t.Fatalf("no customJwt provider with a data: URI in:\n%s", config)
	}
	raw, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return jwksKids(t, string(raw)), m[2]
}

func jwksKids(t *testing.T, jwks string) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(jwks), &set); err != nil {
		t.Fatalf("not a JWKS: %v\n%s", err, jwks)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("a JWKS holds a private key")
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

// TestConvexConfigStaticFromGeneratedKey starts the binary without a
// signing_key, then has `convex-auth convex-config --static`, run with the
// same environment, embed the very key the running gateway publishes.
func TestConvexConfigStaticFromGeneratedKey(t *testing.T) {
	dataDir := t.TempDir()
	port := freePort(t)
	caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	// ES256: the static form refuses the generated default, EdDSA.
	config := fmt.Sprintf("{\n\tadmin off\n}\nhttp://127.0.0.1:%d {\n\tconvex_auth {\n\t\tissuer http://127.0.0.1:%d\n\t\talgorithm ES256\n\t}\n\trespond \"app\"\n}\n", port, port)
	if err := os.WriteFile(caddyfile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	env := isolatedEnv(dataDir)

	// Before the first start there is no key: the message says what to do.
	_, stderr, ok := runCaddyCLI(t, env, "convex-auth", "convex-config", "--config", caddyfile, "--static")
	if ok || !strings.Contains(stderr, "start Caddy once") {
		t.Fatalf("convex-config --static before any start: ok=%v\n%s", ok, stderr)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startCaddyFile(t, caddyBin(t), caddyfile, dataDir, base+"/.well-known/jwks.json")
	_, served := request(t, "GET", base+"/.well-known/jwks.json", nil)

	stdout, stderr, ok := runCaddyCLI(t, env, "convex-auth", "convex-config", "--config", caddyfile, "--static")
	if !ok {
		t.Fatalf("convex-config --static: %s", stderr)
	}
	kids, alg := staticJWKS(t, stdout)
	if want := jwksKids(t, served); strings.Join(kids, ",") != strings.Join(want, ",") || alg != "ES256" {
		t.Fatalf("embedded kids %v (%s), the gateway publishes %v", kids, alg, want)
	}
	if !strings.Contains(stdout, fmt.Sprintf(`issuer: "%s",`, base)) {
		t.Fatalf("the issuer is not the configured one:\n%s", stdout)
	}

	// ES256 is the customJwt form's: the OIDC form is refused with advice.
	_, stderr, ok = runCaddyCLI(t, env, "convex-auth", "convex-config", "--config", caddyfile)
	if ok || !strings.Contains(stderr, "--static") {
		t.Fatalf("convex-config (OIDC form) with ES256: ok=%v\n%s", ok, stderr)
	}

	// Without algorithm the generated key is EdDSA, which --static refuses
	// with the option to set.
	defaultConfig := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(defaultConfig, []byte(strings.Replace(config, "\t\talgorithm ES256\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, ok = runCaddyCLI(t, env, "convex-auth", "convex-config", "--config", defaultConfig, "--static")
	if ok || !strings.Contains(stderr, "set `algorithm ES256`") {
		t.Fatalf("convex-config --static with the default generated key: ok=%v\n%s", ok, stderr)
	}
	stdout, stderr, ok = runCaddyCLI(t, env, "convex-auth", "convex-config", "--config", defaultConfig)
	if !ok || !strings.Contains(stdout, fmt.Sprintf(`domain: "%s",`, base)) {
		t.Fatalf("convex-config: ok=%v\n%s\n%s", ok, stdout, stderr)
	}
}

// TestKeygenThenConvexConfig: a key from `keygen --out` is a signing_key
// file; an ES256 key is refused for the OIDC form and embedded for --static.
func TestKeygenThenConvexConfig(t *testing.T) {
	dir := t.TempDir()
	env := isolatedEnv(t.TempDir())
	keyPath := filepath.Join(dir, "convex.pem")
	if _, stderr, ok := runCaddyCLI(t, env, "convex-auth", "keygen", "--alg", "ES256", "--out", keyPath); !ok {
		t.Fatalf("keygen --out: %s", stderr)
	}
	if info, err := os.Stat(keyPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	if _, stderr, ok := runCaddyCLI(t, env, "convex-auth", "keygen", "--out", keyPath); ok || !strings.Contains(stderr, "already exists") {
		t.Fatalf("keygen over an existing file: ok=%v %s", ok, stderr)
	}

	caddyfile := filepath.Join(dir, "Caddyfile")
	config := "app.example.com {\n\tconvex_auth {\n\t\tissuer https://app.example.com\n\t\tsigning_key file " + keyPath + "\n\t}\n}\n"
	if err := os.WriteFile(caddyfile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// The binary accepts the key.
	runCaddyCommand(t, caddyBin(t), "validate", "--config", caddyfile, "--adapter", "caddyfile")

	stdout, stderr, ok := runCaddyCLI(t, env, "convex-auth", "convex-config", "--config", caddyfile)
	if ok || stdout != "" || !strings.Contains(stderr, "signs with ES256") || !strings.Contains(stderr, "--static") {
		t.Fatalf("ES256 in the OIDC form: ok=%v stdout=%q\n%s", ok, stdout, stderr)
	}
	stdout, stderr, ok = runCaddyCLI(t, env, "convex-auth", "convex-config", "--config", caddyfile, "--static")
	if !ok {
		t.Fatalf("convex-config --static: %s", stderr)
	}
	if kids, alg := staticJWKS(t, stdout); len(kids) != 1 || alg != "ES256" {
		t.Fatalf("embedded kids %v alg %s", kids, alg)
	}
}
