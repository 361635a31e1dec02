package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "convex-auth",
		Usage: "keygen|convex-config|rotate-key|users|sessions|version [flags]",
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

  caddy convex-auth users find --email <e> | get|ban|unban|delete <userId>
  caddy convex-auth users import --from convex-auth|better-auth|authjs <path> [--dry-run] [--map <theirs>=<ours>]... [--sub-from <field>] [--events]
  caddy convex-auth sessions list <userId> | revoke <userId> [<sessionId>] [--except <sessionId>]
      Operator API on a running Caddy's admin endpoint (admin.api.convex_auth),
      reached as caddy reload does: --address, else the admin address of
      --config, else localhost:2019. --realm picks a realm when there are
      several. See docs/admin-api.md; imports: docs/migrate.md.

  caddy convex-auth version
      Prints the version of the convex_auth module built into this Caddy:
      a release tag, a pseudo-version, or (devel) for a local checkout.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(keygenCommand(), convexConfigCommand(), rotateKeyCommand(), rotateFactorKeyCommand(), usersCommand(), sessionsCommand(), versionCommand())
		},
	})
}

// runCommand makes fn a subcommand's RunE; an error exits as a failed start.
func runCommand(fn func(fl caddycmd.Flags) error) func(*cobra.Command, []string) error {
	return caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
		if err := fn(fl); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		return caddy.ExitCodeSuccess, nil
	})
}

// gatewayConfig is a Caddy config as the commands read it: its convex_auth
// handlers, each with an issuer, and its storage, loaded when first needed.
type gatewayConfig struct {
	file     string // the config's name, for messages
	json     []byte
	handlers []*Handler
	ctx      caddy.Context
	cancel   context.CancelFunc
	storage  certmagic.Storage
}

// loadGatewayConfig loads the config the commands read (as `caddy run`
// would find it) and the convex_auth handlers in it, at least one. Close
// the result when done.
func loadGatewayConfig(ctx context.Context, configFile, adapter string) (*gatewayConfig, error) {
	cfgJSON, name, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return nil, err
	}
	if len(cfgJSON) == 0 {
		return nil, errors.New("no config found: pass the gateway's Caddyfile with --config")
	}
	handlers, err := findConvexAuthHandlers(cfgJSON)
	if err != nil {
		return nil, err
	}
	if len(handlers) == 0 {
		return nil, fmt.Errorf("%s has no convex_auth handler: add a convex_auth block with an issuer to the site in front of your app", name)
	}
	for _, h := range handlers {
		if h.Issuer == "" {
			return nil, fmt.Errorf("%s: a convex_auth handler has no issuer: set issuer to the site's origin", name)
		}
	}
	caddyCtx, cancel := caddy.NewContext(caddy.Context{Context: ctx})
	return &gatewayConfig{file: name, json: cfgJSON, handlers: handlers, ctx: caddyCtx, cancel: cancel}, nil
}

func (c *gatewayConfig) close() { c.cancel() }

// loadStorage is the storage the config's Caddy would use: its `storage`
// module, else Caddy's default file system storage.
func (c *gatewayConfig) loadStorage() (certmagic.Storage, error) {
	if c.storage != nil {
		return c.storage, nil
	}
	var cfg caddy.Config
	if err := json.Unmarshal(c.json, &cfg); err != nil {
		return nil, fmt.Errorf("the config is not valid JSON: %w", err)
	}
	if len(cfg.StorageRaw) == 0 {
		c.storage = caddy.DefaultStorage
		return c.storage, nil
	}
	val, err := c.ctx.LoadModule(&cfg, "StorageRaw")
	if err != nil {
		return nil, fmt.Errorf("the config's storage cannot be loaded: %w", err)
	}
	conv, ok := val.(caddy.StorageConverter)
	if !ok {
		return nil, fmt.Errorf("the config's storage module %T is not a storage", val)
	}
	if c.storage, err = conv.CertMagicStorage(); err != nil {
		return nil, fmt.Errorf("the config's storage cannot be opened: %w", err)
	}
	return c.storage, nil
}

// findConvexAuthHandlers returns every convex_auth handler in the config,
// wherever it sits (site routes, subroutes, handle blocks, error routes), in
// document order.
func findConvexAuthHandlers(cfgJSON []byte) ([]*Handler, error) {
	var doc any
	if err := json.Unmarshal(cfgJSON, &doc); err != nil {
		return nil, fmt.Errorf("the config is not valid JSON: %w", err)
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
					return fmt.Errorf("a convex_auth handler cannot be read: %w", err)
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

func storageName(s certmagic.Storage) string {
	if str, ok := s.(fmt.Stringer); ok {
		return str.String()
	}
	return fmt.Sprintf("%T", s)
}
