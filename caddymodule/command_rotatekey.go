package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// RotateKeyOptions are the flags of `caddy convex-auth rotate-key`.
type RotateKeyOptions struct {
	// ConfigFile is the Caddy config (a Caddyfile or JSON); "" looks for
	// ./Caddyfile as `caddy run` does.
	ConfigFile string
	// Adapter is the config adapter; "" guesses as `caddy run` does.
	Adapter string
}

func rotateKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-key [--config <file>] [--adapter <name>]",
		Short: "Starts a rotation of convex_auth's generated signing keys",
		Long: `
Reads a Caddy config and, for every convex_auth handler in it that signs with
a generated key (no signing_key), puts a new next key into the keyring in
Caddy's storage. Running gateways sharing that storage publish it in their
JWKS within seconds, sign with it once it has been published for
key_publish_lead (default 1m), and keep the old key published until its last
token has expired. Run it as the same user and with the same storage as Caddy.

Handlers with signing_key file|env are skipped: publish your new key's JWKS
where Convex reads it, then switch signing_key to it.

key_rotation <duration> rotates on a schedule instead.
`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringP("config", "c", "", "Caddy config file (Caddyfile or JSON)")
	cmd.Flags().StringP("adapter", "a", "", "name of the config adapter")
	cmd.RunE = runCommand(func(fl caddycmd.Flags) error {
		opts := RotateKeyOptions{ConfigFile: fl.String("config"), Adapter: fl.String("adapter")}
		return RotateKey(context.Background(), os.Stdout, os.Stderr, opts)
	})
	return cmd
}

// RotateKey requests a rotation of every generated keyring the config's
// convex_auth handlers use, writing what it did to w and notes to warn.
func RotateKey(ctx context.Context, w, warn io.Writer, opts RotateKeyOptions) error {
	cfg, err := loadGatewayConfig(ctx, opts.ConfigFile, opts.Adapter)
	if err != nil {
		return err
	}
	defer cfg.close()
	rotated := 0
	seen := make(map[string]bool)
	for _, h := range cfg.handlers {
		if h.SigningKey != nil {
			fmt.Fprintf(warn, "note: issuer %s signs with signing_key %s, which the gateway does not rotate: publish the new key first, then switch signing_key to it\n", h.Issuer, h.SigningKey.describe())
			continue
		}
		alg := issuer.Algorithm(h.Algorithm)
		name := keyringName(h.Issuer, alg)
		if seen[name] {
			continue
		}
		seen[name] = true
		storage, err := cfg.loadStorage()
		if err != nil {
			return err
		}
		kr, published, err := issuer.RequestRotation(ctx, certmagicKeyStorage{storage}, name, alg, time.Now())
		if errors.Is(err, issuer.ErrKeyNotFound) {
			return fmt.Errorf("issuer %s: no keyring is in Caddy's storage (%v, key %s): start Caddy once with this config, as the same user and with the same storage, then rotate: %w", h.Issuer, storageName(storage), name, err)
		}
		if err != nil {
			return fmt.Errorf("issuer %s: %w", h.Issuer, err)
		}
		lead := h.publishLead()
		signsAfter := kr.NextPublishedAt.Add(lead).Local().Format(time.RFC3339)
		if published {
			fmt.Fprintf(w, "issuer %s: published next %s key %s; running gateways publish it within %s and sign with it from %s (key_publish_lead %s); the current key %s stays published until its last token expires\n",
				h.Issuer, kr.Next.Algorithm(), kr.Next.ID(), issuer.DefaultPollInterval, signsAfter, lead, kr.Current.ID())
		} else {
			fmt.Fprintf(w, "issuer %s: a rotation is already under way: next key %s signs from %s; nothing changed\n", h.Issuer, kr.Next.ID(), signsAfter)
		}
		rotated++
	}
	if rotated == 0 {
		return fmt.Errorf("%s: no convex_auth handler signs with a generated key, so there is nothing to rotate: every handler sets signing_key", cfg.file)
	}
	return nil
}
