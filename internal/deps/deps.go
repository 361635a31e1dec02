// Package deps pins dependencies until the code that uses them lands. Temporary.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/lestrrat-go/jwx/v2/jwt"
	_ "github.com/redis/go-redis/v9"
	_ "golang.org/x/sync/singleflight"
	_ "golang.org/x/crypto/argon2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.uber.org/zap"
)
