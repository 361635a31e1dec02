package issuer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// Keygen output formats and the default variable name of the env format.
const (
	KeyFormatPEM      = "pem"
	KeyFormatEnv      = "env"
	DefaultKeyEnvName = "CONVEX_AUTH_PRIVATE_KEY"
)

// KeygenOptions are the flags of `caddy convex-auth keygen`; errors name the flags.
type KeygenOptions struct {
	// Algorithm of the new key: RS256 (RSA-2048), EdDSA (Ed25519) or ES256
	// (P-256), in any case. Default DefaultAlgorithm.
	Algorithm string
	// Format is KeyFormatPEM (a PEM block, for a file; the default) or
	// KeyFormatEnv (NAME="…" on one line with \n escapes, for an environment
	// variable or a .env file).
	Format string
	// EnvName is the variable name of the env format. Default DefaultKeyEnvName.
	EnvName string
	// JWKS adds the public JWK set: after the PEM block, or as a second
	// variable (EnvName with _PRIVATE_KEY replaced by _JWKS).
	JWKS bool
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CanonicalAlgorithm spells a user's algorithm name as the JWS "alg" does;
// an unknown name comes back as it is.
func CanonicalAlgorithm(s string) string {
	for _, a := range []Algorithm{RS256, EdDSA, ES256} {
		if strings.EqualFold(s, string(a)) {
			return string(a)
		}
	}
	return s
}

// Keygen writes a new private key, and with opts.JWKS its public JWKS, to w.
func Keygen(w io.Writer, opts KeygenOptions) error {
	if opts.Algorithm == "" {
		opts.Algorithm = string(DefaultAlgorithm)
	}
	alg, err := ParseAlgorithm(CanonicalAlgorithm(opts.Algorithm))
	if err != nil {
		return fmt.Errorf("--alg %q is unknown: use RS256, EdDSA or ES256: %w", opts.Algorithm, err)
	}
	if opts.Format == "" {
		opts.Format = KeyFormatPEM
	}
	if opts.EnvName == "" {
		opts.EnvName = DefaultKeyEnvName
	}
	if opts.Format != KeyFormatPEM && opts.Format != KeyFormatEnv {
		return fmt.Errorf("--format %q is unknown: use pem or env", opts.Format)
	}
	if !envNamePattern.MatchString(opts.EnvName) {
		return fmt.Errorf("--env-name %q is not a variable name: use letters, digits and _", opts.EnvName)
	}
	key, err := GenerateKey(alg)
	if err != nil {
		return err
	}
	pemBytes, err := key.MarshalPKCS8PEM()
	if err != nil {
		return err
	}
	var jwks []byte
	if opts.JWKS {
		jwks = PublicJWKS(key)
	}
	var out strings.Builder
	switch opts.Format {
	case KeyFormatPEM:
		out.Write(pemBytes)
		if jwks != nil {
			// ParseKey reads the PEM block only, so the file stays a valid key.
			out.Write(jwks)
			out.WriteByte('\n')
		}
	case KeyFormatEnv:
		// The one-line form of the Convex Auth.js guide: literal \n escapes.
		oneLine := strings.ReplaceAll(strings.TrimSpace(string(pemBytes)), "\n", `\n`)
		fmt.Fprintf(&out, "%s=\"%s\"\n", opts.EnvName, oneLine)
		if jwks != nil {
			fmt.Fprintf(&out, "%s='%s'\n", jwksEnvName(opts.EnvName), jwks)
		}
	}
	_, err = io.WriteString(w, out.String())
	return err
}

// KeygenToFile writes the Keygen output to a new file that only its owner
// can read; it never overwrites a file.
func KeygenToFile(path string, opts KeygenOptions) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("--out %s already exists: keys are never overwritten; remove it or choose another path: %w", path, err)
		}
		return fmt.Errorf("--out %s cannot be created: %w", path, err)
	}
	if err := Keygen(f, opts); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func jwksEnvName(keyEnvName string) string {
	if base, ok := strings.CutSuffix(keyEnvName, "_PRIVATE_KEY"); ok {
		return base + "_JWKS"
	}
	return keyEnvName + "_JWKS"
}

// PublicJWKS is {"keys":[…]} with the keys' public JWKs only, as the JWKS
// document renders them.
func PublicJWKS(keys ...*Key) []byte {
	return renderJWKS(keys)
}
