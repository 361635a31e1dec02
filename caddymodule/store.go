package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// RedisConfig is the shared session store. Give URL for a standalone server,
// or Addrs with MasterName (Sentinel) or Cluster.
type RedisConfig struct {
	// URL is redis://[user:password@]host:port/db or rediss:// for TLS.
	URL string `json:"url,omitempty"`
	// Addrs are host:port seeds for Sentinel or Cluster.
	Addrs []string `json:"addrs,omitempty"`
	// MasterName selects Sentinel. Default: none.
	MasterName string `json:"master_name,omitempty"`
	// Cluster selects Redis Cluster. Default: false.
	Cluster bool `json:"cluster,omitempty"`
	// Username and Password authenticate; they and URL may use {env.*}
	// placeholders. Default: none.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// DB is the database number (not on Cluster). Default: 0.
	DB int `json:"db,omitempty"`
	// TLS enables TLS. Default: false, or true for rediss:// URLs.
	TLS bool `json:"tls,omitempty"`
	// TLSCAFile is a PEM bundle of CAs to trust. Default: system roots.
	TLSCAFile string `json:"tls_ca_file,omitempty"`
	// TLSInsecureSkipVerify disables certificate checks. Default: false.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`
	// KeyPrefix starts every key. Default: "convex_auth:<realm tag>:", so
	// each realm has its own keys. Records carry their realm whatever the
	// prefix: handlers of two realms may share one.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// DialTimeout, ReadTimeout, WriteTimeout. Defaults: 2s, 1s, 1s.
	DialTimeout  caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// PoolSize is connections per node. Default: 10 per CPU.
	PoolSize int `json:"pool_size,omitempty"`
}

func (c *RedisConfig) sessionConfig() (session.RedisConfig, error) {
	// {env.*} placeholders keep credentials out of the JSON config.
	repl := caddy.NewReplacer()
	rc := session.RedisConfig{
		URL:                   repl.ReplaceKnown(c.URL, ""),
		Addrs:                 c.Addrs,
		MasterName:            c.MasterName,
		Cluster:               c.Cluster,
		Username:              repl.ReplaceKnown(c.Username, ""),
		Password:              repl.ReplaceKnown(c.Password, ""),
		DB:                    c.DB,
		TLS:                   c.TLS,
		TLSCAFile:             c.TLSCAFile,
		TLSInsecureSkipVerify: c.TLSInsecureSkipVerify,
		KeyPrefix:             c.KeyPrefix,
		DialTimeout:           time.Duration(c.DialTimeout),
		ReadTimeout:           time.Duration(c.ReadTimeout),
		WriteTimeout:          time.Duration(c.WriteTimeout),
		PoolSize:              c.PoolSize,
	}
	if err := rc.Validate(); err != nil {
		return rc, fmt.Errorf("convex_auth: redis: %v", err)
	}
	return rc, nil
}

// stores holds the session stores across config reloads, so a reload keeps
// the Redis connections, the local cache and the in-process store's sessions.
var stores = caddy.NewUsagePool()

// pooledStore is a store in the pool; it is closed when the last config
// using it is gone.
type pooledStore struct {
	session.Store
}

func (p pooledStore) Destruct() error { return p.Store.Close() }

func acquireStore(rc *RedisConfig, opts session.Options, logger *zap.Logger) (pooledStore, string, error) {
	// One store per realm: two handlers without redis would otherwise share
	// one in-process store, and so each other's sessions and users.
	keyParts := struct {
		Redis               *RedisConfig
		SessionTTL, IdleTTL time.Duration
		Realm               string
	}{rc, opts.SessionTTL, opts.IdleTTL, opts.Realm}
	raw, err := json.Marshal(keyParts)
	if err != nil {
		return pooledStore{}, "", err
	}
	key := string(raw)
	if err := opts.Validate(); err != nil {
		return pooledStore{}, "", fmt.Errorf("convex_auth: %v", err)
	}
	val, loaded, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		if rc == nil {
			logger.Warn("no redis configured: sessions live in this process only and end when it exits; for development only, set `redis` for production")
			return pooledStore{session.NewMemoryStore(opts)}, nil
		}
		sc, err := rc.sessionConfig()
		if err != nil {
			return nil, err
		}
		routeRedisLogs.Do(func() { redis.SetLogger(redisLogger{}) })
		st, err := session.NewRedisStore(sc, opts)
		if err != nil {
			return nil, fmt.Errorf("convex_auth: redis: %v", err)
		}
		return pooledStore{st}, nil
	})
	if err != nil {
		return pooledStore{}, "", err
	}
	if loaded {
		logger.Debug("reusing session store from previous config")
	}
	return val.(pooledStore), key, nil
}

// routeRedisLogs sets go-redis's process-wide logger once.
var routeRedisLogs sync.Once

// redisLogger sends go-redis's own messages (pool dial failures, Sentinel
// changes), which would otherwise be raw lines on stderr, through Caddy's
// current logger. go-redis has one logger per process, so the name is not
// ours: other modules' go-redis clients log through it too. Debug level: the
// gateway already warns about an unreachable store every few seconds.
type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	caddy.Log().Named("go-redis").Debug(fmt.Sprintf(format, v...))
}

func releaseStore(key string) error {
	_, err := stores.Delete(key)
	return err
}
