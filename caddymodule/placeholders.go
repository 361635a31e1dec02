package caddymodule

import "github.com/caddyserver/caddy/v2"

// replacePlaceholders replaces the placeholders ({env.X}) in each value.
func replacePlaceholders(values ...*string) {
	repl := caddy.NewReplacer()
	for _, v := range values {
		*v = repl.ReplaceKnown(*v, "")
	}
}
