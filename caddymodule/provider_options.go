package caddymodule

import (
	"reflect"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
)

// A provider's options are the JSON fields of its Caddy-free
// configuration, in the Caddyfile as in JSON: the parser below reads them
// by their JSON names and types, so a module only names its
// configuration.

var (
	durationType      = reflect.TypeFor[provider.Duration]()
	caddyDurationType = reflect.TypeFor[caddy.Duration]()
	stringSliceType   = reflect.TypeFor[[]string]()
	stringType        = reflect.TypeFor[string]()
)

// optionFields are the settable fields of the struct v points into, by
// JSON name, through embedded structs.
func optionFields(v reflect.Value) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || !f.IsExported():
			case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
				walk(v.Field(i))
			case name != "":
				out[name] = v.Field(i)
			}
		}
	}
	walk(v.Elem())
	return out
}

// unmarshalOptions parses the block under the cursor into cfg, a pointer
// to a struct: each option is a JSON field of cfg and reads by its type: a
// string takes one value, a list of strings one or more, a number a
// positive integer, a duration one duration, a boolean no value, a struct
// a block of its own options. more, if set, parses an option cfg lacks and
// reports whether it knew it. Unknown and repeated options are errors.
func unmarshalOptions(d *caddyfile.Dispenser, typ string, cfg any, more func(d *caddyfile.Dispenser, option string) (bool, error)) error {
	fields := optionFields(reflect.ValueOf(cfg))
	return unmarshalProviderBlock(d, typ, func(d *caddyfile.Dispenser, sub string) (bool, error) {
		f, ok := fields[sub]
		if !ok {
			if more != nil {
				return more(d, sub)
			}
			return false, nil
		}
		return true, unmarshalOptionValue(d, typ, sub, f)
	})
}

// unmarshalOptionValue reads option's value into f by f's type.
func unmarshalOptionValue(d *caddyfile.Dispenser, typ, option string, f reflect.Value) error {
	switch {
	case f.Type() == durationType, f.Type() == caddyDurationType:
		var v caddy.Duration
		if err := durationArg(d, &v); err != nil {
			return err
		}
		f.SetInt(int64(v))
	case f.Kind() == reflect.String:
		var s string
		if err := oneArg(d, &s); err != nil {
			return err
		}
		f.SetString(s)
	case f.Type() == stringSliceType:
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("%s needs at least one value", option)
		}
		f.Set(reflect.ValueOf(args))
	case f.Kind() == reflect.Int:
		var n int
		if err := positiveIntArg(d, &n); err != nil {
			return err
		}
		f.SetInt(int64(n))
	case f.Kind() == reflect.Bool:
		var b bool
		if err := flagArg(d, &b); err != nil {
			return err
		}
		f.SetBool(b)
	case f.Kind() == reflect.Struct:
		if d.NextArg() {
			return d.Errf("%s takes a block, not a value: %s { ... }", option, option)
		}
		return unmarshalOptions(d, typ+" "+option, f.Addr().Interface(), nil)
	default:
		return d.Errf("%s: an option of type %s cannot be set in the Caddyfile: use JSON", option, f.Type())
	}
	return nil
}

// replaceIn replaces the placeholders ({env.X}) in every string of the
// struct cfg points to, in lists and nested structs too.
func replaceIn(cfg any) {
	repl := caddy.NewReplacer()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			if v.CanSet() {
				v.SetString(repl.ReplaceKnown(v.String(), ""))
			}
		case reflect.Slice:
			if v.Type().Elem() == stringType {
				for i := range v.Len() {
					walk(v.Index(i))
				}
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem())
}

// unmarshalOAuthHead reads `<type> [<name>]` into c's name and returns the
// type.
func unmarshalOAuthHead(d *caddyfile.Dispenser, c *provider.Common) (string, error) {
	d.Next() // the type
	typ := d.Val()
	if d.NextArg() {
		c.Name = d.Val()
		if d.NextArg() {
			return typ, d.Errf("provider needs a type and an optional name: provider github, provider oidc okta { ... }")
		}
	}
	return typ, nil
}

// unmarshalOAuthModule parses a built-in OAuth provider's segment into
// its configuration cfg, whose Common is c, and checks it.
func unmarshalOAuthModule(d *caddyfile.Dispenser, c *provider.Common, cfg any, p builtinProvider) error {
	typ, err := unmarshalOAuthHead(d, c)
	if err != nil {
		return err
	}
	if err := unmarshalOptions(d, typ, cfg, nil); err != nil {
		return err
	}
	return validated(d, p)
}

// unmarshalBuiltin parses a built-in method's segment, `<type> [{ ... }]`,
// into its options cfg, and checks them.
func unmarshalBuiltin(d *caddyfile.Dispenser, cfg any, p builtinProvider) error {
	typ, err := unmarshalBuiltinName(d)
	if err != nil {
		return err
	}
	if err := unmarshalOptions(d, typ, cfg, nil); err != nil {
		return err
	}
	return validated(d, p)
}

// provisionOAuth replaces the placeholders of cfg (whose Common is c) and
// builds its provider. A client ID or secret that a placeholder left empty
// says so.
func provisionOAuth[C any](c *provider.Common, cfg *C, build func(C) (provider.OAuth, error)) (provider.OAuth, error) {
	hadSecret := c.ClientSecret != ""
	replaceIn(cfg)
	if c.ClientID == "" || hadSecret && c.ClientSecret == "" {
		return nil, errEmptyCredentials
	}
	return build(*cfg)
}

// oauthModuleInfo is the module information of provider typ.
func oauthModuleInfo(typ string, newModule func() caddy.Module) caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: caddy.ModuleID(ProvidersNamespace + "." + typ), New: newModule}
}
