package caddymodule

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/convex-auth/caddy-convex-auth/secondfactor"
)

// TestRotateFactorKeyCommand: rotate-factor-key puts a new current key in
// front of the generated factor keys, a secret sealed under the old one
// still opens (stale, to be sealed again), and --retire drops the old one.
func TestRotateFactorKeyCommand(t *testing.T) {
	storageDir := t.TempDir()
	config := `{
	storage file_system ` + storageDir + `
}
app.example.com {
	convex_auth {
		issuer https://app.example.com
		provider password
	}
}
other.example.com {
	convex_auth {
		issuer https://other.example.com
		provider password
		second_factor {
			key env NOT_READ_BY_THE_COMMAND
		}
	}
}`
	file := writeCaddyfile(t, config)
	run := func(retire bool) (string, string, error) {
		var out, warn bytes.Buffer
		err := RotateFactorKey(context.Background(), &out, &warn, RotateFactorKeyOptions{ConfigFile: file, Retire: retire})
		return out.String(), warn.String(), err
	}
	if _, _, err := run(false); err == nil || !strings.Contains(err.Error(), "start Caddy once") {
		t.Fatalf("before the gateway ran: %v", err)
	}
	ctx := context.Background()
	st := certmagicKeyStorage{&certmagic.FileStorage{Path: storageDir}}
	name := factorKeysName("https://app.example.com")
	first, err := secondfactor.LoadOrCreateStoredKeys(ctx, st, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old, _ := secondfactor.NewSecretKeys("realm", first...)
	sealed := old.Seal("user", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")

	out, warn, err := run(false)
	if err != nil || !strings.Contains(out, "issuer https://app.example.com: a new factor key is current (2 in the ring)") ||
		!strings.Contains(warn, "issuer https://other.example.com seals TOTP secrets with second_factor key env NOT_READ_BY_THE_COMMAND") {
		t.Fatalf("rotate: %v\n%s\n%s", err, out, warn)
	}
	keys, _ := secondfactor.LoadOrCreateStoredKeys(ctx, st, name, time.Now())
	ring, _ := secondfactor.NewSecretKeys("realm", keys...)
	if _, stale, err := ring.Open(ctx, "user", sealed); err != nil || !stale {
		t.Fatalf("a secret under the old key after rotating: stale %v, %v", stale, err)
	}
	if out, _, err := run(true); err != nil || !strings.Contains(out, "holds 1 key") {
		t.Fatalf("retire: %v %s", err, out)
	}
	keys, _ = secondfactor.LoadOrCreateStoredKeys(ctx, st, name, time.Now())
	ring, _ = secondfactor.NewSecretKeys("realm", keys...)
	if _, _, err := ring.Open(ctx, "user", sealed); err == nil {
		t.Fatal("a secret under a retired key still opens")
	}
}
