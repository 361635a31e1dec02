package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// RedisConfig is the shared session store. Give URL for a standalone server,
// or Addrs with MasterName (Sentinel) or Cluster. It mirrors
// session.RedisConfig field for field (a test fails if one is missing);
// there the options are explained in full. In the Caddyfile each field is a
// subdirective of redis { } named as its JSON key.
type RedisConfig struct {
	// URL is redis://[user:password@]host:port/db, rediss:// for TLS, or
	// unix:///path. May use {env.*} placeholders. Default: none.
	URL string `json:"url,omitempty"`
	// Addrs are host:port seeds: the Sentinels (with MasterName) or Cluster
	// nodes (with Cluster). Default: none.
	Addrs []string `json:"addrs,omitempty"`
	// MasterName is the Sentinel master name; it selects Sentinel. Default:
	// none.
	MasterName string `json:"master_name,omitempty"`
	// Cluster selects Redis Cluster. Default: false.
	Cluster bool `json:"cluster,omitempty"`
	// Username authenticates to Redis; may use {env.*}. Default: none.
	Username string `json:"username,omitempty"`
	// Password authenticates to Redis; may use {env.*}. Default: none.
	Password string `json:"password,omitempty"`
	// SentinelUsername authenticates to the Sentinels; may use {env.*}.
	// Default: none.
	SentinelUsername string `json:"sentinel_username,omitempty"`
	// SentinelPassword authenticates to the Sentinels; may use {env.*}.
	// Default: none.
	SentinelPassword string `json:"sentinel_password,omitempty"`
	// DB is the database number (not on Cluster). Default: 0.
	DB int `json:"db,omitempty"`
	// TLS enables TLS. Default: false, or true for rediss:// URLs.
	TLS bool `json:"tls,omitempty"`
	// TLSCAFile is a PEM bundle of CAs to trust. Default: system roots.
	TLSCAFile string `json:"tls_ca_file,omitempty"`
	// TLSServerName is the name checked in the server certificate. Default:
	// the host dialled.
	TLSServerName string `json:"tls_server_name,omitempty"`
	// TLSInsecureSkipVerify disables certificate checks. Default: false.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`
	// KeyPrefix starts every key and the revocation channel. Default:
	// "convex_auth:<realm tag>:", so each realm has its own keys. Records
	// carry their realm whatever the prefix: handlers of two realms may
	// share one.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// DialTimeout bounds connecting. Default: 2s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// ReadTimeout bounds reading a reply. Default: 1s.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`
	// WriteTimeout bounds sending a command. Default: 1s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// PoolSize is connections per node. Default: 10 per CPU.
	PoolSize int `json:"pool_size,omitempty"`
	// CacheSize is how many looked-up sessions each instance caches
	// locally, about 540 bytes of heap each. Default: 100000 (about 54 MB);
	// -1 disables the cache.
	CacheSize int `json:"cache_size,omitempty"`
	// CacheTTL is how long a cached lookup is served: the bound on how long
	// a session that left Redis without a revocation (evicted, lost in a
	// failover) can still be served. Revocations reach every instance
	// sooner, over pub/sub, and the cache is flushed when that drops.
	// Default: 5m; negative disables the cache.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`
	// WaitReplicas is how many replicas must acknowledge a new session
	// (WAIT) before sign-in completes, so that a failover cannot lose it;
	// a master waits only for the replicas it has connected. Revocations
	// always wait for the connected replicas. Default: 0 (sign-in does
	// not wait).
	WaitReplicas int `json:"wait_replicas,omitempty"`
	// WaitTimeout bounds each wait for replicas, within the request's
	// deadline. Default: 1s.
	WaitTimeout caddy.Duration `json:"wait_timeout,omitempty"`
}

func (c *RedisConfig) sessionConfig() (session.RedisConfig, error) {
	rc := c.toSession()
	if err := rc.Validate(); err != nil {
		return rc, fmt.Errorf("convex_auth: redis: %w", err)
	}
	return rc, nil
}

// toSession maps every field; a test checks that none is left out.
func (c *RedisConfig) toSession() session.RedisConfig {
	// {env.*} placeholders keep credentials out of the JSON config.
	repl := caddy.NewReplacer()
	return session.RedisConfig{
		URL:                   repl.ReplaceKnown(c.URL, ""),
		Addrs:                 c.Addrs,
		MasterName:            c.MasterName,
		Cluster:               c.Cluster,
		Username:              repl.ReplaceKnown(c.Username, ""),
		Password:              repl.ReplaceKnown(c.Password, ""),
		SentinelUsername:      repl.ReplaceKnown(c.SentinelUsername, ""),
		SentinelPassword:      repl.ReplaceKnown(c.SentinelPassword, ""),
		DB:                    c.DB,
		TLS:                   c.TLS,
		TLSCAFile:             c.TLSCAFile,
		TLSServerName:         c.TLSServerName,
		TLSInsecureSkipVerify: c.TLSInsecureSkipVerify,
		KeyPrefix:             c.KeyPrefix,
		DialTimeout:           time.Duration(c.DialTimeout),
		ReadTimeout:           time.Duration(c.ReadTimeout),
		WriteTimeout:          time.Duration(c.WriteTimeout),
		PoolSize:              c.PoolSize,
		CacheSize:             c.CacheSize,
		CacheTTL:              time.Duration(c.CacheTTL),
		WaitReplicas:          c.WaitReplicas,
		WaitTimeout:           time.Duration(c.WaitTimeout),
	}
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
		MaxSessionsPerUser  int
	}{rc, opts.SessionTTL, opts.IdleTTL, opts.Realm, opts.MaxSessionsPerUser}
	raw, err := json.Marshal(keyParts)
	if err != nil {
		return pooledStore{}, "", err
	}
	key := string(raw)
	if err := opts.Validate(); err != nil {
		return pooledStore{}, "", fmt.Errorf("convex_auth: %w", err)
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
			return nil, fmt.Errorf("convex_auth: redis: %w", err)
		}
		// In the background: Redis may still be starting.
		go warnEvictionPolicy(st, logger)
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

// evictionCheckTimeout bounds the start-up maxmemory-policy check.
const evictionCheckTimeout = 10 * time.Second

// warnEvictionPolicy warns if Redis may evict records that have no TTL
// (users, accounts): people would get new user IDs.
func warnEvictionPolicy(st interface {
	CheckEvictionPolicy(context.Context) error
}, logger *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), evictionCheckTimeout)
	defer cancel()
	err := st.CheckEvictionPolicy(ctx)
	var pe *session.EvictionPolicyError
	switch {
	case errors.As(err, &pe):
		logger.Warn("redis may evict user and account records: set maxmemory-policy to noeviction or volatile-lru (see docs/scale.md)",
			zap.String("node", pe.Addr), zap.String("maxmemory_policy", pe.Policy))
	case err != nil:
		logger.Debug("could not read redis maxmemory-policy", zap.Error(err))
	}
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
