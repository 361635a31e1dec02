package caddymodule

import (
	"fmt"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

func keygenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keygen [--alg RS256|EdDSA|ES256] [--format pem|env] [--env-name <NAME>] [--jwks] [--out <file>]",
		Short: "Prints a new PKCS#8 PEM signing key for convex_auth",
		Long: `
Generates a signing key for convex_auth's signing_key option.

--alg      RS256 (default; RSA-2048, accepted by both Convex provider forms),
           EdDSA (Ed25519, OIDC form only) or ES256 (P-256, customJwt form only).
--format   pem (default): the PEM block, for signing_key file <path>.
           env: CONVEX_AUTH_PRIVATE_KEY="-----BEGIN PRIVATE KEY-----\n…" on one
           line, for signing_key env CONVEX_AUTH_PRIVATE_KEY.
--env-name the variable name of the env format.
--jwks     also print the public JWKS (after the PEM block, or as a second
           variable, CONVEX_AUTH_JWKS).
--out      write to this file (created with mode 0600; never overwritten)
           instead of standard output.
`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().String("alg", string(issuer.DefaultAlgorithm), "key algorithm: RS256, EdDSA or ES256")
	cmd.Flags().String("format", issuer.KeyFormatPEM, "output format: pem or env")
	cmd.Flags().String("env-name", issuer.DefaultKeyEnvName, "variable name of the env format")
	cmd.Flags().Bool("jwks", false, "also print the public JWKS")
	cmd.Flags().String("out", "", "write to this new file instead of standard output")
	cmd.RunE = runCommand(func(fl caddycmd.Flags) error {
		opts := issuer.KeygenOptions{
			Algorithm: fl.String("alg"),
			Format:    fl.String("format"),
			EnvName:   fl.String("env-name"),
			JWKS:      fl.Bool("jwks"),
		}
		out := fl.String("out")
		if out == "" {
			return issuer.Keygen(os.Stdout, opts)
		}
		if err := issuer.KeygenToFile(out, opts); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote a new %s signing key to %s\n", issuer.CanonicalAlgorithm(opts.Algorithm), out)
		return nil
	})
	return cmd
}
