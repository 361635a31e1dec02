package caddymodule

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/convex-auth/caddy-convex-auth/secondfactor"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// RotateFactorKeyOptions are the flags of `caddy convex-auth
// rotate-factor-key`.
type RotateFactorKeyOptions struct {
	// ConfigFile and Adapter find the Caddy config, as rotate-key's.
	ConfigFile, Adapter string
	// Retire drops every key but the current one instead of adding one.
	Retire bool
}

func rotateFactorKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-factor-key [--config <file>] [--adapter <name>] [--retire]",
		Short: "Rotates the generated key that seals TOTP secrets",
		Long: `
Reads a Caddy config and, for every convex_auth handler in it whose factor
key is generated (second_factor without key), puts a new current key in
front of the keys in Caddy's storage. Gateways take it at their next start
or config reload; each TOTP secret is sealed again under it the next time
it is read (a sign-in's challenge). The older keys stay and keep opening
the secrets not read yet.

--retire drops every key but the current one, once the old ones have done
their work: secrets still sealed under them no longer open (their users
sign in with a backup code or a passkey, or an operator resets their
factors). Back up Caddy's storage first (docs/operations.md).

With second_factor { key ... }, rotate by hand: make a new key, set it as
key and the old one as previous_key, reload.
`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringP("config", "c", "", "Caddy config file (Caddyfile or JSON)")
	cmd.Flags().StringP("adapter", "a", "", "name of the config adapter")
	cmd.Flags().Bool("retire", false, "drop every key but the current one")
	cmd.RunE = runCommand(func(fl caddycmd.Flags) error {
		opts := RotateFactorKeyOptions{ConfigFile: fl.String("config"), Adapter: fl.String("adapter"), Retire: fl.Bool("retire")}
		return RotateFactorKey(context.Background(), os.Stdout, os.Stderr, opts)
	})
	return cmd
}

// RotateFactorKey rotates (or retires the old keys of) every generated
// factor key the config's convex_auth handlers use.
func RotateFactorKey(ctx context.Context, w, warn io.Writer, opts RotateFactorKeyOptions) error {
	cfg, err := loadGatewayConfig(ctx, opts.ConfigFile, opts.Adapter)
	if err != nil {
		return err
	}
	defer cfg.close()
	done := 0
	seen := make(map[string]bool)
	for _, h := range cfg.handlers {
		if h.SignIn == nil || len(h.SignIn.Providers) == 0 {
			continue
		}
		if sf := h.SignIn.SecondFactor; sf != nil && (sf.Key != nil || sf.Mode == signin.SecondFactorOff) {
			if sf.Key != nil {
				fmt.Fprintf(warn, "note: issuer %s seals TOTP secrets with second_factor key %s: set a new key there and the old one as previous_key\n", h.Issuer, sf.Key)
			}
			continue
		}
		name := factorKeysName(h.Issuer)
		if seen[name] {
			continue
		}
		seen[name] = true
		storage, err := cfg.loadStorage()
		if err != nil {
			return err
		}
		st := certmagicKeyStorage{storage}
		if _, err := st.Load(ctx, name); err != nil {
			return fmt.Errorf("issuer %s: no factor key is in Caddy's storage (%v, key %s): start Caddy once with this config, as the same user and with the same storage: %w", h.Issuer, storageName(storage), name, err)
		}
		if opts.Retire {
			keys, err := secondfactor.RetireStoredKeys(ctx, st, name)
			if err != nil {
				return fmt.Errorf("issuer %s: %w", h.Issuer, err)
			}
			fmt.Fprintf(w, "issuer %s: the factor key ring holds %d key; secrets sealed under the dropped keys no longer open\n", h.Issuer, len(keys))
		} else {
			keys, err := secondfactor.RotateStoredKeys(ctx, st, name, time.Now())
			if err != nil {
				return fmt.Errorf("issuer %s: %w", h.Issuer, err)
			}
			fmt.Fprintf(w, "issuer %s: a new factor key is current (%d in the ring); reload the gateways to seal with it; each secret is sealed again under it when next read\n", h.Issuer, len(keys))
		}
		done++
	}
	if done == 0 {
		return fmt.Errorf("%s: no convex_auth handler seals TOTP secrets with a generated factor key, so there is nothing to rotate", cfg.file)
	}
	return nil
}
