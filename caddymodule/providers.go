package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// ProvidersNamespace is the namespace of sign-in provider modules: a
// provider of type github is the module http.convex_auth.providers.github.
// In JSON each is an object of sign_in.providers, named by its "type".
const ProvidersNamespace = "http.convex_auth.providers"

// OAuthProvider is what a provider module implements to add an OAuth 2.0
// or OpenID Connect sign-in method: after Provision, OAuthProvider returns
// the method, Caddy-free (docs/providers.md).
type OAuthProvider interface {
	OAuthProvider() provider.OAuth
}

// builtinMethod is a built-in provider other than OAuth (password, email,
// anonymous): it sets its part of the sign-in configuration.
type builtinMethod interface {
	addTo(cfg *signin.Config)
}

// builtinProvider is every built-in provider module: its name is known
// before it is provisioned, and Validate checks it then too (placeholders
// are checked once replaced).
type builtinProvider interface {
	caddy.Validator
	providerName() string
}

// decodeProvider reads one sign_in.providers entry into a new module of
// its type, not provisioned. An option of another type is refused naming
// the type it belongs to.
func decodeProvider(raw json.RawMessage) (caddy.Module, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("a provider is not a JSON object: %w", err)
	}
	var typ string
	if err := json.Unmarshal(fields["type"], &typ); err != nil || typ == "" {
		return nil, fmt.Errorf("a provider has no type: use %s", providerTypes())
	}
	info, err := caddy.GetModule(ProvidersNamespace + "." + typ)
	if err != nil {
		return nil, fmt.Errorf("provider type %q is unknown: use %s", typ, providerTypes())
	}
	mod := info.New()
	delete(fields, "type")
	rest, _ := json.Marshal(fields)
	if err := caddy.StrictUnmarshalJSON(rest, mod); err != nil {
		known := jsonFields(reflect.TypeOf(mod))
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			if !slices.Contains(known, name) {
				return nil, fmt.Errorf("provider %s: %s", typ, notAnOption(typ, name))
			}
		}
		return nil, fmt.Errorf("provider %s: %w", typ, err)
	}
	return mod, nil
}

// notAnOption says that option is none of typ's, and whose it is.
func notAnOption(typ, option string) string {
	var owners []string
	for _, info := range caddy.GetModules(ProvidersNamespace) {
		if slices.Contains(jsonFields(reflect.TypeOf(info.New())), option) {
			owners = append(owners, info.ID.Name())
		}
	}
	switch {
	case len(owners) > 0:
		return fmt.Sprintf("%s is an option of provider %s, not of %s", option, strings.Join(owners, ", "), typ)
	case slices.Contains(jsonFields(reflect.TypeOf(MailOptions{})), option):
		return fmt.Sprintf("%s is an option of the email block (sign_in.email), not of provider %s", option, typ)
	}
	return fmt.Sprintf("%s is no option of provider %s", option, typ)
}

// jsonFields are the JSON names of a struct's fields, embedded ones too.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
		case name != "":
			out = append(out, name)
		default:
			out = append(out, f.Name)
		}
	}
	return out
}

// providerTypes lists the registered provider types.
func providerTypes() string {
	var types []string
	for _, info := range caddy.GetModules(ProvidersNamespace) {
		types = append(types, info.ID.Name())
	}
	if len(types) > 1 {
		return strings.Join(types[:len(types)-1], ", ") + " or " + types[len(types)-1]
	}
	return strings.Join(types, "")
}

// providerName is a provider's name: the built-ins know theirs before they
// are provisioned, OAuth providers once they are; "" until then.
func providerName(m caddy.Module) string {
	switch m := m.(type) {
	case builtinProvider:
		return m.providerName()
	case OAuthProvider:
		if p := m.OAuthProvider(); p != nil {
			return p.Info().Name
		}
	}
	return ""
}

// UnmarshalOAuth parses an OAuth provider's Caddyfile segment,
// `<type> [<name>] { ... }`, into c: the name, the options every OAuth 2.0
// and OIDC provider takes (client_id, client_secret, scopes, redirect_url,
// auth_url, token_url, label, allowed_email_domains, admission_ttl) and,
// through more, the type's own (more parses the option under the cursor
// and reports whether it knew it). Unknown and repeated options are
// errors. A third-party OAuth provider module may use it in its
// UnmarshalCaddyfile.
func UnmarshalOAuth(d *caddyfile.Dispenser, c *provider.Common, more func(d *caddyfile.Dispenser, option string) (bool, error)) error {
	typ, err := unmarshalOAuthHead(d, c)
	if err != nil {
		return err
	}
	return unmarshalOptions(d, typ, c, more)
}

// unmarshalProviderBlock parses a provider's block: option tells whether
// it knew each option (and parses its value). Unknown and repeated options
// are errors.
func unmarshalProviderBlock(d *caddyfile.Dispenser, typ string, option func(d *caddyfile.Dispenser, sub string) (bool, error)) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("provider %s: %s is set more than once: keep one", typ, sub)
		}
		seen[sub] = true
		known, err := option(d, sub)
		if err != nil {
			return err
		}
		if !known {
			return d.Errf("unknown option %q for provider %s (%s)", sub, typ, notAnOption(typ, sub))
		}
	}
	return nil
}

// unmarshalBuiltinName reads the optional name of a built-in method, which
// can only be its type: `provider password [password]`.
func unmarshalBuiltinName(d *caddyfile.Dispenser) (string, error) {
	d.Next() // the type
	typ := d.Val()
	if d.NextArg() && d.Val() != typ {
		return typ, d.Errf("provider %s takes no name: it is always %s", typ, typ)
	}
	if d.NextArg() {
		return typ, d.Errf("provider needs a type and an optional name: provider github, provider oidc okta { ... }")
	}
	return typ, nil
}

// errEmptyCredentials is a client ID or secret that a placeholder left
// empty.
var errEmptyCredentials = errors.New("client_id or client_secret is empty after replacing placeholders: set the environment variable it names")

// validated checks a provider parsed from the Caddyfile, naming it.
func validated(d *caddyfile.Dispenser, p builtinProvider) error {
	if err := p.Validate(); err != nil {
		return d.Errf("provider %s: %v", p.providerName(), err)
	}
	return nil
}

// nameOr is name, or typ when it is empty.
func nameOr(name, typ string) string {
	if name != "" {
		return name
	}
	return typ
}
