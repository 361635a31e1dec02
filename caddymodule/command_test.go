package caddymodule

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// writeKeyFile writes a new key of alg as PEM and returns the path and key.
func writeKeyFile(t *testing.T, alg issuer.Algorithm) (string, *issuer.Key) {
	t.Helper()
	key, err := issuer.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := key.MarshalPKCS8PEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, key
}

func writeCaddyfile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
