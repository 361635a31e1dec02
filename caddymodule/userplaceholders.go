package caddymodule

import (
	"strconv"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/convex-auth/caddy-convex-auth/edge"
)

// claimsPlaceholderPrefix starts {http.auth.user.claims.<name>}.
const claimsPlaceholderPrefix = "http.auth.user.claims."

// setAuthzPlaceholders sets {http.auth.user.auth_time} (Unix seconds) and
// one {http.auth.user.claims.<name>} per custom claim (a string as is, a
// number or boolean as JSON, an array's members joined by commas, an
// object as JSON), for matchers and handlers after convex_auth, e.g.
// expression {http.auth.user.claims.role} == "admin".
func setAuthzPlaceholders(repl *caddy.Replacer, a edge.Authenticated) {
	repl.Set("http.auth.user.auth_time", strconv.FormatInt(a.Session.AuthTime.Unix(), 10))
	if a.Claims == nil {
		return
	}
	for _, name := range a.Claims.Names() {
		v, _ := a.Claims.Text(name)
		repl.Set(claimsPlaceholderKey(name), v)
	}
}

// claimsPlaceholderKeys remembers each claim name's placeholder key, so a
// request does not build them again: an app's claims have a few names
// (and past maxPlaceholderKeys they are built each time).
var claimsPlaceholderKeys struct {
	sync.RWMutex
	m map[string]string
}

const maxPlaceholderKeys = 1024

func claimsPlaceholderKey(name string) string {
	c := &claimsPlaceholderKeys
	c.RLock()
	k, ok := c.m[name]
	c.RUnlock()
	if ok {
		return k
	}
	k = claimsPlaceholderPrefix + name
	c.Lock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	if len(c.m) < maxPlaceholderKeys {
		c.m[name] = k
	}
	c.Unlock()
	return k
}
