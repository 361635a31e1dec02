package issuer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadKey(t *testing.T) {
	key := testKey(t, ES256)
	pemText, err := key.MarshalPKCS8PEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pemText, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONVEX_AUTH_TEST_READKEY", strings.ReplaceAll(string(pemText), "\n", `\n`))
	for _, src := range []KeySource{{From: "file", Path: path}, {From: "env", Env: "CONVEX_AUTH_TEST_READKEY"}} {
		got, err := ReadKey(src, "")
		if err != nil || got.ID() != key.ID() {
			t.Fatalf("%s: %v, %v; want the written key", src, got, err)
		}
	}

	missing := KeySource{From: "file", Path: filepath.Join(t.TempDir(), "missing.pem")}
	if _, err := ReadKey(missing, ""); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), missing.String()+" cannot be read") {
		t.Fatalf("missing file: %v", err)
	}
	for _, tc := range []struct {
		src  KeySource
		alg  Algorithm
		want string
	}{
		{KeySource{From: "env", Env: "CONVEX_AUTH_TEST_UNSET_VARIABLE"}, "", "env CONVEX_AUTH_TEST_UNSET_VARIABLE is not set"},
		{KeySource{From: "vault"}, "", `source "vault" is unknown`},
		{KeySource{From: "file", Path: path}, EdDSA, "file " + path + ": "},
	} {
		if _, err := ReadKey(tc.src, tc.alg); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error starting %q", tc.src, err, tc.want)
		}
	}
}
