package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

func rotateKey(t *testing.T, config string) (string, string, error) {
	t.Helper()
	var out, warn bytes.Buffer
	err := RotateKey(context.Background(), &out, &warn, RotateKeyOptions{ConfigFile: writeCaddyfile(t, config)})
	return out.String(), warn.String(), err
}

func TestRotateKeyCommand(t *testing.T) {
	storageDir := t.TempDir()
	config := `{
	storage file_system ` + storageDir + `
}
app.example.com {
	convex_auth {
		issuer https://app.example.com
		key_publish_lead 45s
		algorithm ES256
	}
}
other.example.com {
	convex_auth {
		issuer https://other.example.com
		signing_key file /nonexistent.pem
	}
}`
	if _, _, err := rotateKey(t, config); !errors.Is(err, issuer.ErrKeyNotFound) || !strings.Contains(err.Error(), "start Caddy once") {
		t.Fatalf("before the gateway ran: %v", err)
	}

	st := certmagicKeyStorage{&certmagic.FileStorage{Path: storageDir}}
	// ES256, which convex-config --static below accepts for a generated key.
	alg := issuer.ES256
	name := keyringName("https://app.example.com", alg)
	kr, err := issuer.LoadOrCreateKeyring(context.Background(), st, name, alg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, warn, err := rotateKey(t, config)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := issuer.LoadKeyring(context.Background(), st, name, alg)
	if err != nil || stored.Next == nil || stored.Current.ID() != kr.Current.ID() {
		t.Fatalf("after rotate-key the keyring has next %v (err %v)", stored, err)
	}
	for _, want := range []string{"issuer https://app.example.com: published next ES256 key " + stored.Next.ID(), "key_publish_lead 45s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if !strings.Contains(warn, "issuer https://other.example.com signs with signing_key file /nonexistent.pem, which the gateway does not rotate") {
		t.Errorf("no note about the signing_key handler: %q", warn)
	}

	// Again while the rotation is under way: nothing changes.
	out, _, err = rotateKey(t, config)
	if err != nil || !strings.Contains(out, "already under way") {
		t.Fatalf("second rotate-key: %q %v", out, err)
	}
	if again, _ := issuer.LoadKeyring(context.Background(), st, name, alg); again.Next.ID() != stored.Next.ID() {
		t.Fatal("a second rotate-key replaced the pending next key")
	}

	// convex-config --static embeds both, and says why.
	static, note, err := convexConfig(t, ConvexConfigOptions{ConfigFile: writeCaddyfile(t, strings.Split(config, "other.example.com")[0]), Static: true})
	if err != nil {
		t.Fatal(err)
	}
	ps := parseStaticConfig(t, static)
	var kids []string
	for it := 0; it < ps[0].jwks.Len(); it++ {
		k, _ := ps[0].jwks.Key(it)
		kid, _ := k.KeyID()
		kids = append(kids, kid)
	}
	if want := []string{stored.Current.ID(), stored.Next.ID()}; !slices.Equal(kids, want) {
		t.Fatalf("static JWKS kids %v, want current and next %v", kids, want)
	}
	if !strings.Contains(note, "a key rotation is under way") {
		t.Fatalf("no note about the rotation: %q", note)
	}

	// Only signing_key handlers: nothing to rotate is an error.
	if _, _, err := rotateKey(t, "other.example.com {\n\tconvex_auth {\n\t\tissuer https://other.example.com\n\t\tsigning_key env X\n\t}\n}\n"); err == nil || !strings.Contains(err.Error(), "nothing to rotate") {
		t.Fatalf("signing_key only: %v", err)
	}
}
