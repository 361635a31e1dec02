package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/spf13/cobra"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "convex-auth",
		Usage: "keygen|convex-config|rotate-key [flags]",
		Short: "Makes signing keys and Convex's auth.config.ts for convex_auth",
		Long: `
Tools for the convex_auth gateway.

  caddy convex-auth keygen [--alg RS256|EdDSA|ES256] [--format pem|env] [--jwks] [--out <file>]
      Prints a new PKCS#8 PEM private key for signing_key, as a PEM block or
      as a one-line environment variable; --jwks adds its public JWKS.

  caddy convex-auth convex-config [--config <file>] [--adapter <name>] [--static]
      Prints convex/auth.config.ts for every convex_auth handler in the
      config: the OIDC form { domain, applicationID }, or with --static the
      customJwt form with the public key embedded as a data: URI, for
      Convex deployments that cannot reach the gateway.

  caddy convex-auth rotate-key [--config <file>] [--adapter <name>]
      Starts a rotation of the generated signing keys: a next key is put in
      Caddy's storage; running gateways publish it within seconds and sign
      with it after key_publish_lead.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(keygenCommand(), convexConfigCommand(), rotateKeyCommand())
		},
	})
}

// Defaults of the CLI flags.
const (
	DefaultKeyEnvName = "CONVEX_AUTH_PRIVATE_KEY"
	keyFormatPEM      = "pem"
	keyFormatEnv      = "env"
	// staticJWKSDataURIPrefix is the data: URI form Convex's custom JWT
	// documentation gives for an inline JWKS.
	staticJWKSDataURIPrefix = "data:text/plain;charset=utf-8;base64,"
)

// KeygenOptions are the flags of `caddy convex-auth keygen`.
type KeygenOptions struct {
	// Algorithm of the new key: RS256 (RSA-2048), EdDSA (Ed25519) or ES256 (P-256).
	Algorithm string
	// Format is "pem" (a PEM block, for a file) or "env" (NAME="…" on one
	// line with \n escapes, for an environment variable or a .env file).
	Format string
	// EnvName is the variable name of the env format.
	EnvName string
	// JWKS adds the public JWK set: after the PEM block, or as a second
	// variable (EnvName with _PRIVATE_KEY replaced by _JWKS).
	JWKS bool
}

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
	cmd.Flags().String("format", keyFormatPEM, "output format: pem or env")
	cmd.Flags().String("env-name", DefaultKeyEnvName, "variable name of the env format")
	cmd.Flags().Bool("jwks", false, "also print the public JWKS")
	cmd.Flags().String("out", "", "write to this new file instead of standard output")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
		opts := KeygenOptions{
			Algorithm: fl.String("alg"),
			Format:    fl.String("format"),
			EnvName:   fl.String("env-name"),
			JWKS:      fl.Bool("jwks"),
		}
		out := fl.String("out")
		if out == "" {
			if err := Keygen(os.Stdout, opts); err != nil {
				return caddy.ExitCodeFailedStartup, err
			}
			return caddy.ExitCodeSuccess, nil
		}
		if err := keygenToFile(out, opts); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Fprintf(os.Stderr, "wrote a new %s signing key to %s\n", canonicalAlgorithm(opts.Algorithm), out)
		return caddy.ExitCodeSuccess, nil
	})
	return cmd
}

// keygenToFile writes the key to a new file that only its owner can read.
func keygenToFile(path string, opts KeygenOptions) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("--out %s already exists: keys are never overwritten; remove it or choose another path", path)
		}
		return fmt.Errorf("--out %s cannot be created: %v", path, errors.Unwrap(err))
	}
	if err := Keygen(f, opts); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// canonicalAlgorithm spells a user's algorithm name as the JWS "alg" does.
func canonicalAlgorithm(s string) string {
	for _, a := range []issuer.Algorithm{issuer.RS256, issuer.EdDSA, issuer.ES256} {
		if strings.EqualFold(s, string(a)) {
			return string(a)
		}
	}
	return s
}

// Keygen writes a new private key, and with opts.JWKS its public JWKS, to w.
func Keygen(w io.Writer, opts KeygenOptions) error {
	if opts.Algorithm == "" {
		opts.Algorithm = string(issuer.DefaultAlgorithm)
	}
	alg, err := issuer.ParseAlgorithm(canonicalAlgorithm(opts.Algorithm))
	if err != nil {
		return fmt.Errorf("--alg %q is unknown: use RS256, EdDSA or ES256", opts.Algorithm)
	}
	if opts.Format == "" {
		opts.Format = keyFormatPEM
	}
	if opts.EnvName == "" {
		opts.EnvName = DefaultKeyEnvName
	}
	if opts.Format != keyFormatPEM && opts.Format != keyFormatEnv {
		return fmt.Errorf("--format %q is unknown: use pem or env", opts.Format)
	}
	if !envNamePattern.MatchString(opts.EnvName) {
		return fmt.Errorf("--env-name %q is not a variable name: use letters, digits and _", opts.EnvName)
	}
	key, err := issuer.GenerateKey(alg)
	if err != nil {
		return err
	}
	pemBytes, err := key.MarshalPKCS8PEM()
	if err != nil {
		return err
	}
	var jwks []byte
	if opts.JWKS {
		if jwks, err = publicJWKS(key); err != nil {
			return err
		}
	}
	var out strings.Builder
	switch opts.Format {
	case keyFormatPEM:
		out.Write(pemBytes)
		if jwks != nil {
			// ParseKey reads the PEM block only, so the file stays a valid key.
			out.Write(jwks)
			out.WriteByte('\n')
		}
	case keyFormatEnv:
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

func jwksEnvName(keyEnvName string) string {
	if base, ok := strings.CutSuffix(keyEnvName, "_PRIVATE_KEY"); ok {
		return base + "_JWKS"
	}
	return keyEnvName + "_JWKS"
}

// publicJWKS is {"keys":[…]} with the keys' public JWKs only.
func publicJWKS(keys ...*issuer.Key) ([]byte, error) {
	set := jwk.NewSet()
	for _, key := range keys {
		if err := set.AddKey(key.PublicJWK()); err != nil {
			return nil, err
		}
	}
	return json.Marshal(set)
}

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
in this form. The key comes from signing_key (file or env, read now), or from
Caddy's storage for a generated key: start Caddy once first, as the same user
and with the same storage. Print it again after changing the key.
`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringP("config", "c", "", "Caddy config file (Caddyfile or JSON)")
	cmd.Flags().StringP("adapter", "a", "", "name of the config adapter")
	cmd.Flags().Bool("static", false, "print the customJwt form with the public JWKS embedded")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
		opts := ConvexConfigOptions{
			ConfigFile: fl.String("config"),
			Adapter:    fl.String("adapter"),
			Static:     fl.Bool("static"),
		}
		if err := ConvexConfig(context.Background(), os.Stdout, os.Stderr, opts); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		return caddy.ExitCodeSuccess, nil
	})
	return cmd
}

// convexProvider is one entry of auth.config.ts's providers.
type convexProvider struct {
	issuer        string
	applicationID string
	algorithm     issuer.Algorithm // "" when it could not be told
	jwks          []byte           // --static only
}

// ConvexConfig writes convex/auth.config.ts for the config's convex_auth
// handlers to w; notes that do not stop it go to warn.
func ConvexConfig(ctx context.Context, w, warn io.Writer, opts ConvexConfigOptions) error {
	cfgJSON, configFile, handlers, err := loadGatewayConfig(opts.ConfigFile, opts.Adapter)
	if err != nil {
		return err
	}
	caddyCtx, cancel := caddy.NewContext(caddy.Context{Context: ctx})
	defer cancel()
	var storage certmagic.Storage // loaded once, when a generated key is needed

	var providers []convexProvider
	seen := make(map[string]bool)
	for _, h := range handlers {
		if h.Issuer == "" {
			return fmt.Errorf("%s: a convex_auth handler has no issuer: set issuer to the site's origin", configFile)
		}
		p := convexProvider{issuer: h.Issuer, applicationID: h.ApplicationID}
		if p.applicationID == "" {
			p.applicationID = DefaultApplicationID
		}
		id := p.issuer + "\x00" + p.applicationID
		if seen[id] {
			continue
		}
		seen[id] = true

		alg := issuer.Algorithm(h.Algorithm)
		var key, next *issuer.Key
		var keyErr error
		switch {
		case h.SigningKey != nil:
			key, keyErr = readConfiguredKey(h.SigningKey, alg)
		case opts.Static:
			if storage == nil {
				if storage, err = loadConfigStorage(caddyCtx, cfgJSON); err != nil {
					return err
				}
			}
			key, next, keyErr = readGeneratedKeys(ctx, storage, h.Issuer, alg)
		}
		switch {
		case key != nil:
			p.algorithm = key.Algorithm()
		case alg != "":
			p.algorithm = alg
		case h.SigningKey == nil:
			// A generated key without an algorithm option is RSA.
			p.algorithm = issuer.DefaultAlgorithm
		}

		if opts.Static {
			if keyErr != nil {
				return fmt.Errorf("issuer %s: --static embeds the public key, but %v", p.issuer, keyErr)
			}
			if p.algorithm == issuer.EdDSA {
				return fmt.Errorf("issuer %s signs with EdDSA, which Convex's customJwt form does not accept (RS256 and ES256 only): drop --static to use the OIDC form, or sign with an RS256 or ES256 key (caddy convex-auth keygen --alg ES256)", p.issuer)
			}
			keys := []*issuer.Key{key}
			if next != nil {
				// Convex must know the next key before the gateways sign with it.
				keys = append(keys, next)
				fmt.Fprintf(warn, "note: issuer %s: a key rotation is under way, so the JWKS holds the current key and the next one (kid %s), which signs after key_publish_lead; print and deploy this again once it signs, to drop the old key\n", p.issuer, next.ID())
			}
			if h.KeyRotation != 0 {
				fmt.Fprintf(warn, "note: issuer %s: key_rotation is set, so the embedded keys go out of date at every rotation: print and deploy this again while each next key is published, or use the OIDC form (without --static), which follows rotations by itself\n", p.issuer)
			}
			if p.jwks, err = publicJWKS(keys...); err != nil {
				return err
			}
		} else {
			if keyErr != nil {
				fmt.Fprintf(warn, "note: issuer %s: the key's algorithm could not be checked (%v); Convex's OIDC form accepts RS256 and EdDSA keys only\n", p.issuer, keyErr)
			}
			if p.algorithm == issuer.ES256 {
				return fmt.Errorf("issuer %s signs with ES256, which Convex's OIDC form does not accept (RS256 and EdDSA only): run with --static for the customJwt form, or sign with an RS256 or EdDSA key (caddy convex-auth keygen --alg RS256)", p.issuer)
			}
		}
		providers = append(providers, p)
	}
	// Sorted, so the file does not change with Caddy's route order.
	slices.SortFunc(providers, func(a, b convexProvider) int {
		return strings.Compare(a.issuer+"\x00"+a.applicationID, b.issuer+"\x00"+b.applicationID)
	})
	_, err = io.WriteString(w, renderAuthConfig(providers, filepath.Base(configFile), opts.Static))
	return err
}

// loadGatewayConfig loads the config the commands read (as `caddy run`
// would find it) and the convex_auth handlers in it, at least one.
func loadGatewayConfig(configFile, adapter string) (cfgJSON []byte, name string, handlers []*Handler, err error) {
	cfgJSON, name, _, err = caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return nil, "", nil, err
	}
	if len(cfgJSON) == 0 {
		return nil, "", nil, errors.New("no config found: pass the gateway's Caddyfile with --config")
	}
	if handlers, err = findConvexAuthHandlers(cfgJSON); err != nil {
		return nil, "", nil, err
	}
	if len(handlers) == 0 {
		return nil, "", nil, fmt.Errorf("%s has no convex_auth handler: add a convex_auth block with an issuer to the site in front of your app", name)
	}
	return cfgJSON, name, handlers, nil
}

// findConvexAuthHandlers returns every convex_auth handler in the config,
// wherever it sits (site routes, subroutes, handle blocks, error routes), in
// document order.
func findConvexAuthHandlers(cfgJSON []byte) ([]*Handler, error) {
	var doc any
	if err := json.Unmarshal(cfgJSON, &doc); err != nil {
		return nil, fmt.Errorf("the config is not valid JSON: %v", err)
	}
	var found []*Handler
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "convex_auth" {
				raw, err := json.Marshal(v)
				if err != nil {
					return err
				}
				h := new(Handler)
				if err := json.Unmarshal(raw, h); err != nil {
					return fmt.Errorf("a convex_auth handler cannot be read: %v", err)
				}
				found = append(found, h)
				return nil
			}
			// Map order is random; walk keys sorted so output is stable.
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if err := walk(v[k]); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return found, walk(doc)
}

// readConfiguredKey reads signing_key file|env as the gateway would.
func readConfiguredKey(src *SigningKeySource, alg issuer.Algorithm) (*issuer.Key, error) {
	var pemText []byte
	switch src.From {
	case "file":
		b, err := os.ReadFile(src.Path)
		if err != nil {
			return nil, fmt.Errorf("signing_key file %s cannot be read: %v (a relative path is read from the current directory)", src.Path, errors.Unwrap(err))
		}
		pemText = b
	case "env":
		v, ok := os.LookupEnv(src.Env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("signing_key env %s is not set here: run this command with the same environment as Caddy", src.Env)
		}
		pemText = []byte(v)
	default:
		return nil, errors.New("signing_key must be `file <path>` or `env <VARIABLE>`")
	}
	key, err := issuer.ParseKey(pemText, alg)
	if err != nil {
		return nil, fmt.Errorf("signing_key %s: %v", src.describe(), err)
	}
	return key, nil
}

// loadConfigStorage is the storage the config's Caddy would use: its
// `storage` module, else Caddy's default file system storage.
func loadConfigStorage(ctx caddy.Context, cfgJSON []byte) (certmagic.Storage, error) {
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, fmt.Errorf("the config is not valid JSON: %v", err)
	}
	if len(cfg.StorageRaw) == 0 {
		return caddy.DefaultStorage, nil
	}
	val, err := ctx.LoadModule(&cfg, "StorageRaw")
	if err != nil {
		return nil, fmt.Errorf("the config's storage cannot be loaded: %v", err)
	}
	conv, ok := val.(caddy.StorageConverter)
	if !ok {
		return nil, fmt.Errorf("the config's storage module %T is not a storage", val)
	}
	return conv.CertMagicStorage()
}

// readGeneratedKeys loads the keys a gateway generated for iss into
// storage: the keyring's current key, and its next key or nil.
func readGeneratedKeys(ctx context.Context, storage certmagic.Storage, iss string, alg issuer.Algorithm) (current, next *issuer.Key, err error) {
	name := keyringName(iss, alg)
	kr, err := issuer.LoadKeyring(ctx, certmagicKeyStorage{storage}, name, alg)
	switch {
	case err == nil:
		return kr.Current, kr.Next, nil
	case !errors.Is(err, issuer.ErrKeyNotFound):
		return nil, nil, fmt.Errorf("the generated keys in Caddy's storage (%v): %v", storageName(storage), err)
	}
	// A gateway of an earlier version kept one key, without a keyring.
	current, err = readLegacyGeneratedKey(ctx, storage, iss, alg)
	return current, nil, err
}

// readLegacyGeneratedKey loads the single key earlier versions generated.
func readLegacyGeneratedKey(ctx context.Context, storage certmagic.Storage, iss string, alg issuer.Algorithm) (*issuer.Key, error) {
	name := generatedKeyName(iss, alg)
	b, err := certmagicKeyStorage{storage}.Load(ctx, name)
	if errors.Is(err, issuer.ErrKeyNotFound) {
		return nil, fmt.Errorf("no generated key is in Caddy's storage (%v, key %s): start Caddy once with this config, as the same user and with the same storage, so that it generates one; or set signing_key file|env (caddy convex-auth keygen prints a key)", storageName(storage), keyringName(iss, alg))
	}
	if err != nil {
		return nil, fmt.Errorf("the storage (%v) cannot be read: %v", storageName(storage), err)
	}
	key, err := issuer.ParseKey(b, alg)
	if err != nil {
		return nil, fmt.Errorf("the generated key in Caddy's storage (%s): %v", name, err)
	}
	return key, nil
}

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
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
		opts := RotateKeyOptions{ConfigFile: fl.String("config"), Adapter: fl.String("adapter")}
		if err := RotateKey(context.Background(), os.Stdout, os.Stderr, opts); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		return caddy.ExitCodeSuccess, nil
	})
	return cmd
}

// RotateKey requests a rotation of every generated keyring the config's
// convex_auth handlers use, writing what it did to w and notes to warn.
func RotateKey(ctx context.Context, w, warn io.Writer, opts RotateKeyOptions) error {
	cfgJSON, configFile, handlers, err := loadGatewayConfig(opts.ConfigFile, opts.Adapter)
	if err != nil {
		return err
	}
	caddyCtx, cancel := caddy.NewContext(caddy.Context{Context: ctx})
	defer cancel()
	var storage certmagic.Storage
	rotated := 0
	seen := make(map[string]bool)
	for _, h := range handlers {
		if h.Issuer == "" {
			return fmt.Errorf("%s: a convex_auth handler has no issuer: set issuer to the site's origin", configFile)
		}
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
		if storage == nil {
			if storage, err = loadConfigStorage(caddyCtx, cfgJSON); err != nil {
				return err
			}
		}
		kr, published, err := issuer.RequestRotation(ctx, certmagicKeyStorage{storage}, name, alg, time.Now())
		if errors.Is(err, issuer.ErrKeyNotFound) {
			return fmt.Errorf("issuer %s: no keyring is in Caddy's storage (%v, key %s): start Caddy once with this config, as the same user and with the same storage, then rotate", h.Issuer, storageName(storage), name)
		}
		if err != nil {
			return fmt.Errorf("issuer %s: %v", h.Issuer, err)
		}
		lead := time.Duration(h.KeyPublishLead)
		if lead == 0 {
			lead = issuer.DefaultPublishLead
		}
		signsAfter := kr.NextPublishedAt.Add(lead).Local().Format(time.RFC3339)
		if published {
			fmt.Fprintf(w, "issuer %s: published next %s key %s; running gateways publish it within %s and sign with it from %s (key_publish_lead %s); the current key %s stays published until its last token expires\n",
				h.Issuer, kr.Next.Algorithm(), kr.Next.ID(), defaultKeyPollInterval, signsAfter, lead, kr.Current.ID())
		} else {
			fmt.Fprintf(w, "issuer %s: a rotation is already under way: next key %s signs from %s; nothing changed\n", h.Issuer, kr.Next.ID(), signsAfter)
		}
		rotated++
	}
	if rotated == 0 {
		return fmt.Errorf("%s: no convex_auth handler signs with a generated key, so there is nothing to rotate: every handler sets signing_key", configFile)
	}
	return nil
}

func storageName(s certmagic.Storage) string {
	if str, ok := s.(fmt.Stringer); ok {
		return str.String()
	}
	return fmt.Sprintf("%T", s)
}

// renderAuthConfig writes convex/auth.config.ts. Strings are JSON-encoded,
// which is valid TypeScript.
func renderAuthConfig(providers []convexProvider, configName string, static bool) string {
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	var b strings.Builder
	if static {
		fmt.Fprintf(&b, "// convex/auth.config.ts, printed by `caddy convex-auth convex-config --static`\n")
		fmt.Fprintf(&b, "// for the convex_auth gateway configured in %s. The gateway's public key\n", configName)
		b.WriteString("// is embedded (a customJwt provider with a data: URI JWKS), so Convex never\n")
		b.WriteString("// calls the gateway. Print it again and deploy after the key changes.\n")
	} else {
		fmt.Fprintf(&b, "// convex/auth.config.ts, printed by `caddy convex-auth convex-config`\n")
		fmt.Fprintf(&b, "// for the convex_auth gateway configured in %s. Convex fetches\n", configName)
		b.WriteString("// <domain>/.well-known/openid-configuration and the JWKS it names, and\n")
		b.WriteString("// accepts tokens whose iss equals domain and whose aud equals applicationID.\n")
	}
	b.WriteString("import type { AuthConfig } from \"convex/server\";\n\nexport default {\n  providers: [\n")
	for _, p := range providers {
		b.WriteString("    {\n")
		if static {
			b.WriteString("      type: \"customJwt\",\n")
			fmt.Fprintf(&b, "      issuer: %s,\n", q(p.issuer))
			fmt.Fprintf(&b, "      jwks: %s,\n", q(staticJWKSDataURIPrefix+base64.StdEncoding.EncodeToString(p.jwks)))
			fmt.Fprintf(&b, "      algorithm: %s,\n", q(string(p.algorithm)))
		} else {
			fmt.Fprintf(&b, "      domain: %s,\n", q(p.issuer))
		}
		fmt.Fprintf(&b, "      applicationID: %s,\n", q(p.applicationID))
		b.WriteString("    },\n")
	}
	b.WriteString("  ],\n} satisfies AuthConfig;\n")
	return b.String()
}
