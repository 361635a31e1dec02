package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/cobra"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// ConvexConfigOptions are the flags of `caddy convex-auth convex-config`.
type ConvexConfigOptions struct {
	// ConfigFile is the Caddy config (a Caddyfile or JSON); "" looks for
	// ./Caddyfile as `caddy run` does.
	ConfigFile string
	// Adapter is the config adapter; "" guesses as `caddy run` does.
	Adapter string
	// Static prints the customJwt form with the public JWKS embedded.
	Static bool
}

func convexConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "convex-config [--config <file>] [--adapter <name>] [--static]",
		Short: "Prints convex/auth.config.ts for the configured convex_auth issuers",
		Long: `
Reads a Caddy config, finds every convex_auth handler in it and prints the
convex/auth.config.ts that makes Convex accept its tokens.

Without --static: the OIDC provider form, { domain, applicationID }. Convex
fetches <domain>/.well-known/openid-configuration and the JWKS from the
gateway. Convex accepts RS256 and EdDSA keys in this form.

With --static: the customJwt form, with the gateway's public key embedded as a
data: URI, for deployments that cannot reach the gateway (local development
against Convex's cloud, private networks). Convex accepts RS256 and ES256 keys
in this form; a generated key is EdDSA unless the handler sets algorithm
ES256 (as fast) or RS256. The key comes from signing_key (file or env, read
now), or from Caddy's storage for a generated key: start Caddy once first, as
the same user and with the same storage. Print it again after changing the
key.
`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringP("config", "c", "", "Caddy config file (Caddyfile or JSON)")
	cmd.Flags().StringP("adapter", "a", "", "name of the config adapter")
	cmd.Flags().Bool("static", false, "print the customJwt form with the public JWKS embedded")
	cmd.RunE = runCommand(func(fl caddycmd.Flags) error {
		opts := ConvexConfigOptions{
			ConfigFile: fl.String("config"),
			Adapter:    fl.String("adapter"),
			Static:     fl.Bool("static"),
		}
		return ConvexConfig(context.Background(), os.Stdout, os.Stderr, opts)
	})
	return cmd
}

// ConvexConfig writes convex/auth.config.ts for the config's convex_auth
// handlers to w; notes that do not stop it go to warn.
func ConvexConfig(ctx context.Context, w, warn io.Writer, opts ConvexConfigOptions) error {
	cfg, err := loadGatewayConfig(ctx, opts.ConfigFile, opts.Adapter)
	if err != nil {
		return err
	}
	defer cfg.close()

	var providers []issuer.ConvexProvider
	seen := make(map[string]bool)
	for _, h := range cfg.handlers {
		p := issuer.ConvexProvider{Issuer: h.Issuer, ApplicationID: h.ApplicationID}
		if p.ApplicationID == "" {
			p.ApplicationID = DefaultApplicationID
		}
		id := p.Issuer + "\x00" + p.ApplicationID
		if seen[id] {
			continue
		}
		seen[id] = true

		alg := issuer.Algorithm(h.Algorithm)
		if h.SigningKey == nil {
			alg = defaultedAlgorithm(alg)
			if opts.Static && alg == issuer.EdDSA {
				// Told before reading storage: the advice is the same
				// whether or not a key was generated yet.
				return fmt.Errorf("issuer %s signs with a generated EdDSA key, which Convex's customJwt form does not accept (RS256 and ES256 only): set `algorithm ES256` in its convex_auth block (ES256 signs as fast as EdDSA; the gateway then generates a P-256 key), or drop --static to use the OIDC form", p.Issuer)
			}
		}
		var key, next *issuer.Key
		var keyErr error
		switch {
		case h.SigningKey != nil:
			key, keyErr = h.SigningKey.read(alg)
		case opts.Static:
			storage, err := cfg.loadStorage()
			if err != nil {
				return err
			}
			key, next, keyErr = readGeneratedKeys(ctx, storage, h.Issuer, alg)
		}
		switch {
		case key != nil:
			p.Algorithm = key.Algorithm()
		case alg != "":
			p.Algorithm = alg
		}

		if opts.Static {
			if keyErr != nil {
				return fmt.Errorf("issuer %s: --static embeds the public key, but %w", p.Issuer, keyErr)
			}
			if err := p.CheckForm(true); err != nil {
				return err
			}
			keys := []*issuer.Key{key}
			if next != nil {
				// Convex must know the next key before the gateways sign with it.
				keys = append(keys, next)
				fmt.Fprintf(warn, "note: issuer %s: a key rotation is under way, so the JWKS holds the current key and the next one (kid %s), which signs after key_publish_lead; print and deploy this again once it signs, to drop the old key\n", p.Issuer, next.ID())
			}
			if h.KeyRotation != 0 {
				fmt.Fprintf(warn, "note: issuer %s: key_rotation is set, so the embedded keys go out of date at every rotation: print and deploy this again while each next key is published, or use the OIDC form (without --static), which follows rotations by itself\n", p.Issuer)
			}
			p.Keys = keys
		} else {
			if keyErr != nil {
				fmt.Fprintf(warn, "note: issuer %s: the key's algorithm could not be checked (%v); Convex's OIDC form accepts RS256 and EdDSA keys only\n", p.Issuer, keyErr)
			}
			if err := p.CheckForm(false); err != nil {
				return err
			}
			if issuer.UnreachableFromCloud(p.Issuer) {
				fmt.Fprintf(warn, "note: issuer %s: Convex's cloud cannot reach it, so only a Convex backend on this machine or network can use this file; for a cloud deployment print the customJwt form with --static (the file says how)\n", p.Issuer)
			}
		}
		providers = append(providers, p)
	}
	text, err := issuer.AuthConfig(providers, filepath.Base(cfg.file), opts.Static)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, text)
	return err
}

// readGeneratedKeys loads the keys a gateway generated for iss into
// storage: the keyring's current key, and its next key or nil.
func readGeneratedKeys(ctx context.Context, storage certmagic.Storage, iss string, alg issuer.Algorithm) (current, next *issuer.Key, err error) {
	name := keyringName(iss, alg)
	kr, err := issuer.LoadKeyring(ctx, certmagicKeyStorage{storage}, name, alg)
	switch {
	case errors.Is(err, issuer.ErrKeyNotFound):
		return nil, nil, fmt.Errorf("no generated key is in Caddy's storage (%v, key %s): start Caddy once with this config, as the same user and with the same storage, so that it generates one; or set signing_key file|env (caddy convex-auth keygen prints a key): %w", storageName(storage), name, err)
	case err != nil:
		return nil, nil, fmt.Errorf("the generated keys in Caddy's storage (%v): %w", storageName(storage), err)
	}
	return kr.Current, kr.Next, nil
}
