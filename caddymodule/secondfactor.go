package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/secondfactor"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// SecondFactorOptions are the second factor's policy and the factor key,
// the sign_in field's second_factor.
//
// Caddyfile, inside convex_auth:
//
//	second_factor [off|optional|required] [{
//	    key             file <path> | env <VARIABLE>   # seals TOTP secrets; default: generated in Caddy's storage
//	    previous_key    file <path> | env <VARIABLE>   # repeatable: older keys, whose secrets are sealed again when read
//	    remember_device <duration>                     # default 0 (off); at most 720h
//	}]
type SecondFactorOptions struct {
	// Mode is off, optional (users may enrol from the account page) or
	// required (a user without one enrols at the next sign-in). Default:
	// optional.
	Mode string `json:"mode,omitempty"`
	// Key is where the factor key that seals TOTP secrets comes from: 32
	// random bytes in base64 (openssl rand -base64 32). Default: none, a
	// key generated on first start and kept in Caddy's storage (back it
	// up: see docs/operations.md).
	Key *secondfactor.KeySource `json:"key,omitempty"`
	// PreviousKeys open secrets sealed under them, which are then sealed
	// again with Key (rotation). Default: none.
	PreviousKeys []secondfactor.KeySource `json:"previous_keys,omitempty"`
	// RememberDevice lets a browser skip the challenge this long after one
	// passed in it. Default: 0, never.
	RememberDevice caddy.Duration `json:"remember_device,omitempty"`
}

// policy is the options' part of signin's configuration, without keys.
func (o *SecondFactorOptions) policy() signin.SecondFactorConfig {
	return signin.SecondFactorConfig{Mode: o.Mode, RememberDevice: time.Duration(o.RememberDevice)}
}

func (o *SecondFactorOptions) check() error {
	if err := o.policy().Validate(); err != nil {
		return err
	}
	if o.Key != nil {
		if err := o.Key.Check(); err != nil {
			return fmt.Errorf("second_factor key %w", err)
		}
	}
	for _, k := range o.PreviousKeys {
		if err := k.Check(); err != nil {
			return fmt.Errorf("second_factor previous_key %w", err)
		}
	}
	if len(o.PreviousKeys) > 0 && o.Key == nil {
		return fmt.Errorf("second_factor previous_key needs key: the generated key rotates with caddy convex-auth rotate-factor-key")
	}
	return nil
}

// factorKeysName is the storage key of the generated factor keys: one per
// issuer, beside the signing keys.
func factorKeysName(iss string) string { return generatedKeysDir(iss) + "/factor_keys.json" }

// provisionSecondFactor loads the factor keys and builds the policy.
func (h *Handler) provisionSecondFactor(ctx caddy.Context, cfg *signin.Config) error {
	o := h.SignIn.SecondFactor
	if o == nil {
		o = new(SecondFactorOptions)
	}
	sf := o.policy()
	cfg.SecondFactor = &sf
	if o.Mode == signin.SecondFactorOff {
		return nil
	}
	var keys [][]byte
	if o.Key != nil {
		for i, src := range append([]secondfactor.KeySource{*o.Key}, o.PreviousKeys...) {
			k, err := src.Read()
			if err != nil {
				opt := "key"
				if i > 0 {
					opt = "previous_key"
				}
				return fmt.Errorf("convex_auth: second_factor %s %w", opt, err)
			}
			keys = append(keys, k)
		}
	} else {
		var err error
		keys, err = secondfactor.LoadOrCreateStoredKeys(ctx, certmagicKeyStorage{ctx.Storage()}, factorKeysName(h.Issuer), time.Now())
		if err != nil {
			return fmt.Errorf("convex_auth: the generated factor key in Caddy's storage: %w", err)
		}
	}
	sk, err := secondfactor.NewSecretKeys(h.realm, keys...)
	if err != nil {
		return fmt.Errorf("convex_auth: second_factor: %w", err)
	}
	sf.Keys = sk
	return nil
}

func (o *SecondFactorOptions) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		o.Mode = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] && sub != "previous_key" {
			return d.Errf("second_factor: %s is set more than once: keep one", sub)
		}
		seen[sub] = true
		switch sub {
		case "key", "previous_key":
			args := d.RemainingArgs()
			if len(args) != 2 || (args[0] != "file" && args[0] != "env") {
				return d.Errf("second_factor %s needs `file <path>` or `env <VARIABLE>`", sub)
			}
			src := secondfactor.KeySource{From: args[0], Path: args[1]}
			if args[0] == "env" {
				src = secondfactor.KeySource{From: "env", Env: args[1]}
			}
			if sub == "key" {
				o.Key = &src
			} else {
				o.PreviousKeys = append(o.PreviousKeys, src)
			}
		case "remember_device":
			if err := durationArg(d, &o.RememberDevice); err != nil {
				return err
			}
		default:
			return d.Errf("unknown option %q in second_factor: use key, previous_key or remember_device", sub)
		}
	}
	if err := o.check(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}
