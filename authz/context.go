package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxContextValueBytes bounds one value of a session's context (an
// organization's ID, say).
const MaxContextValueBytes = 256

// ErrBadContext wraps every reason a context switch request is refused
// before the query is asked.
var ErrBadContext = errors.New("bad session context")

var contextKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// CheckContextKeys checks the allow-list of context keys.
func CheckContextKeys(keys []string) error {
	for i, k := range keys {
		if !contextKeyRE.MatchString(k) {
			return fmt.Errorf("claims: context key %q is not a name: use letters, digits and _, e.g. org", k)
		}
		if slices.Contains(keys[:i], k) {
			return fmt.Errorf("claims: context key %q is listed twice", k)
		}
	}
	return nil
}

// parseContext reads a context switch request's body: a JSON object whose
// keys are in allowed and whose values are non-empty strings. It returns
// the context as compact JSON, keys sorted.
func parseContext(body []byte, allowed []string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil || fields == nil || dec.More() {
		return nil, fmt.Errorf(`%w: the body must be a JSON object such as {"%s":"<id>"}`, ErrBadContext, firstOr(allowed, "org"))
	}
	out := make(map[string]string, len(fields))
	for k, raw := range fields {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("%w: %q is not a context key here: use %s", ErrBadContext, k, strings.Join(allowed, ", "))
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil || v == "" || len(v) > MaxContextValueBytes || !utf8.ValidString(v) {
			return nil, fmt.Errorf("%w: %s must be a non-empty string of at most %d bytes", ErrBadContext, k, MaxContextValueBytes)
		}
		out[k] = v
	}
	return json.Marshal(out) // sorted keys
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
