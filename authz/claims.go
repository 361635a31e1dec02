package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxClaimsBytes is the largest claims object accepted, as compact JSON:
// every token of the session carries it, on every proxied request.
const MaxClaimsBytes = 4096

// ReservedClaims are the names a custom claim may not take: the token's
// own (set by the gateway or by JWT and OIDC) and the OIDC standard claims
// Convex maps onto UserIdentity. A reply naming one is refused whole.
var ReservedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "auth_time", "amr", "acr", "azp", "nonce",
	"name", "given_name", "family_name", "nickname", "preferred_username", "profile", "picture",
	"website", "email", "email_verified", "gender", "birthdate", "zoneinfo", "locale",
	"phone_number", "phone_number_verified", "address", "updated_at",
}

// IsReservedClaim reports whether name is one of ReservedClaims.
func IsReservedClaim(name string) bool { return slices.Contains(ReservedClaims, name) }

// ErrClaimsRefused wraps every reason a query's value is not taken as
// claims: not an object, too large, a reserved or repeated name.
var ErrClaimsRefused = errors.New("claims refused")

// Claims are a session's custom claims as the app's query returned them,
// checked and made ready for tokens, rules and placeholders. A Claims is
// never modified once made, so it is shared freely.
type Claims struct {
	json    []byte              // the object, compact, names sorted
	members []byte              // json without its braces: what a token appends
	values  map[string][]string // each claim's values as rules compare them
	text    map[string]string   // each claim as a placeholder shows it
	names   []string            // sorted
}

// NoClaims is the empty set: a query that returned {} or null.
var NoClaims = &Claims{json: []byte("{}"), values: map[string][]string{}, text: map[string]string{}}

// ParseClaims checks a query's value and makes Claims of it. It refuses a
// value that is not a JSON object, an object over MaxClaimsBytes as
// compact JSON, an empty, reserved or repeated name.
func ParseClaims(raw []byte) (*Claims, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: the query's value is not a JSON object", ErrClaimsRefused)
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: the query's value is not valid JSON", ErrClaimsRefused)
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: the query's value is not valid JSON", ErrClaimsRefused)
		}
		switch {
		case name == "":
			return nil, fmt.Errorf("%w: a claim has an empty name", ErrClaimsRefused)
		case IsReservedClaim(name):
			return nil, fmt.Errorf("%w: %q is a reserved claim (the gateway, JWT or OIDC sets it): rename it", ErrClaimsRefused, name)
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("%w: claim %q appears twice", ErrClaimsRefused, name)
		}
		fields[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: the query's value is not valid JSON", ErrClaimsRefused)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: the query's value has data after the object", ErrClaimsRefused)
	}
	if len(fields) == 0 {
		return NoClaims, nil
	}

	c := &Claims{values: make(map[string][]string, len(fields)), text: make(map[string]string, len(fields))}
	for name := range fields {
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, name := range c.names {
		if i > 0 {
			buf.WriteByte(',')
		}
		key, _ := json.Marshal(name)
		buf.Write(key)
		buf.WriteByte(':')
		if err := json.Compact(&buf, fields[name]); err != nil {
			return nil, fmt.Errorf("%w: claim %q is not valid JSON", ErrClaimsRefused, name)
		}
		if buf.Len() > MaxClaimsBytes {
			break
		}
	}
	buf.WriteByte('}')
	if buf.Len() > MaxClaimsBytes {
		return nil, fmt.Errorf("%w: the claims take more than %d bytes of JSON: keep IDs and roles in them, not data", ErrClaimsRefused, MaxClaimsBytes)
	}
	c.json = buf.Bytes()
	c.members = c.json[1 : len(c.json)-1]
	for _, name := range c.names {
		c.values[name], c.text[name] = claimValues(fields[name])
	}
	return c, nil
}

// claimValues returns what rules compare a claim with (a string; a
// number's or boolean's JSON text; each such member of an array) and how
// a placeholder shows it (arrays joined by commas, objects as JSON).
func claimValues(raw json.RawMessage) (values []string, text string) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil, ""
	}
	scalar := func(v any) (string, bool) {
		switch x := v.(type) {
		case string:
			return x, true
		case json.Number:
			return x.String(), true
		case bool:
			if x {
				return "true", true
			}
			return "false", true
		}
		return "", false
	}
	switch x := v.(type) {
	case nil:
		return nil, ""
	case []any:
		shown := make([]string, 0, len(x))
		for _, m := range x {
			if s, ok := scalar(m); ok {
				values = append(values, s)
				shown = append(shown, s)
			} else {
				b, _ := json.Marshal(m)
				shown = append(shown, string(b))
			}
		}
		return values, strings.Join(shown, ",")
	case map[string]any:
		var buf bytes.Buffer
		_ = json.Compact(&buf, raw)
		return nil, buf.String()
	default:
		s, _ := scalar(x)
		return []string{s}, s
	}
}

// has reports whether claim name holds one of values.
func (c *Claims) has(name string, values []string) bool {
	for _, have := range c.values[name] {
		for _, want := range values {
			if have == want {
				return true
			}
		}
	}
	return false
}

// JSON returns the claims as a compact JSON object, names sorted. The
// caller must not modify it.
func (c *Claims) JSON() []byte { return c.json }

// Members returns the object's members without its braces, empty when
// there are none: what a token's payload appends. The caller must not
// modify it.
func (c *Claims) Members() []byte { return c.members }

// Names returns the claim names, sorted. The caller must not modify it.
func (c *Claims) Names() []string { return c.names }

// Text returns a claim as a placeholder shows it: a string as is, a
// number or boolean as JSON, an array's members joined by commas, an
// object as JSON.
func (c *Claims) Text(name string) (string, bool) {
	t, ok := c.text[name]
	return t, ok
}

// Equal reports whether c and d hold the same claims.
func (c *Claims) Equal(d *Claims) bool {
	if c == nil || d == nil {
		return c == d
	}
	return bytes.Equal(c.json, d.json)
}

// checkClaimName refuses a name no custom claim can have.
func checkClaimName(name string) error {
	if IsReservedClaim(name) {
		return fmt.Errorf("claim %q is reserved, never a custom claim: use the criteria email, email_domain, email_verified, provider or user for what the session says", name)
	}
	return nil
}
