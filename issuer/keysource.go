package issuer

import (
	"fmt"
	"os"
	"strings"
)

// KeySource names where a configured signing key's PEM text is kept.
type KeySource struct {
	// From is "file" or "env".
	From string
	// Path is the PEM file, for From "file"; relative to the current directory.
	Path string
	// Env is the environment variable holding the PEM, for From "env".
	Env string
}

// String is "file <path>" or "env <NAME>", as the signing_key option reads.
func (s KeySource) String() string {
	if s.From == "env" {
		return "env " + s.Env
	}
	return "file " + s.Path
}

// ReadKey reads the key src names and checks it fits alg (see ParseKey).
// The gateway and its commands both read keys here, so they fail alike.
// Errors start with src (e.g. "file /k.pem cannot be read"), for the caller
// to prefix with its option name.
func ReadKey(src KeySource, alg Algorithm) (*Key, error) {
	var pemText []byte
	switch src.From {
	case "file":
		b, err := os.ReadFile(src.Path)
		if err != nil {
			return nil, fmt.Errorf("%s cannot be read (a relative path is read from the current directory): %w", src, err)
		}
		pemText = b
	case "env":
		v, ok := os.LookupEnv(src.Env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%s is not set: export it with a PKCS#8 PEM private key (caddy convex-auth keygen prints one), in the environment of Caddy and of its commands", src)
		}
		pemText = []byte(v)
	default:
		return nil, fmt.Errorf("source %q is unknown: use `file <path>` or `env <VARIABLE>`", src.From)
	}
	key, err := ParseKey(pemText, alg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return key, nil
}
