package caddymodule

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzCaddyfile: the directive's parser never panics, and whatever it
// accepts can be checked without panicking.
func FuzzCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"convex_auth {\nissuer https://a.example\n}",
		"convex_auth {\nredis redis://a {\ndb 1\n}\ncookie {\nname x\n}\ninject header X\ninject cookie y\n}",
		"convex_auth {\nprotect /a* /b\ntoken_ttl 1m\nsigning_key env K\n}",
		"convex_auth {\ninject\n}", "convex_auth {\n}\n}", "convex_auth {\nredis {\n", "<<00\n ",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		// Not NewTestDispenser: it calls log.Fatalf on a lexer error (an
		// unterminated heredoc), which kills the fuzz worker.
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		_ = h.Validate()
	})
}
