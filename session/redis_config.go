package session

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults for RedisConfig. The timeouts are short because a request waits on
// them: an unreachable store must turn into a prompt 503, not a hung request.
const (
	// DefaultKeyPrefix starts the default key prefix, which goes on with
	// the realm's tag (DefaultKeyPrefixFor).
	DefaultKeyPrefix         = "convex_auth:"
	DefaultRedisDialTimeout  = 2 * time.Second
	DefaultRedisReadTimeout  = time.Second
	DefaultRedisWriteTimeout = time.Second

	// maxKeyPrefixBytes keeps keys (stored once per session) short.
	maxKeyPrefixBytes = 64
)

// RedisConfig says how to reach Redis. Give exactly one of: URL (a standalone
// server), Addrs with MasterName (Sentinel), or Addrs with Cluster.
type RedisConfig struct {
	// URL is redis://[user:password@]host[:port][/db], rediss:// for TLS, or
	// unix:///path/to/socket. go-redis query options (dial_timeout=…) apply.
	URL string
	// Addrs are host:port seeds of the Sentinels (with MasterName) or of
	// the Cluster nodes (with Cluster).
	Addrs []string
	// MasterName is the Sentinel master name; it selects Sentinel.
	MasterName string
	// Cluster selects Redis Cluster.
	Cluster bool
	// Username and Password authenticate to Redis (not in URL as well).
	Username string
	Password string
	// SentinelUsername and SentinelPassword authenticate to the Sentinels.
	SentinelUsername string
	SentinelPassword string
	// DB is the database number; not on Cluster.
	DB int
	// TLS enables TLS (rediss:// URLs always use it).
	TLS bool
	// TLSCAFile is a PEM bundle of CAs to trust instead of the system roots.
	TLSCAFile string
	// TLSServerName overrides the name checked in the server certificate.
	TLSServerName string
	// TLSInsecureSkipVerify disables certificate checks. Never in production.
	TLSInsecureSkipVerify bool
	// KeyPrefix starts every key and the revocation channel. Default
	// DefaultKeyPrefixFor(Options.Realm): DefaultKeyPrefix and the realm's
	// tag. It must not contain '{' or '}' (Cluster hash tags). Records are
	// checked against the realm whatever the prefix.
	KeyPrefix string
	// Timeouts. Defaults: DefaultRedisDialTimeout, DefaultRedisReadTimeout,
	// DefaultRedisWriteTimeout.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize is connections per node. Default: go-redis's, 10 per CPU.
	PoolSize int
	// CacheSize is how many looked-up sessions each instance keeps in its
	// local cache, about 540 bytes of heap each. Default DefaultCacheSize
	// (100,000: about 54 MB); negative disables the cache.
	CacheSize int
	// CacheTTL is how long a cached lookup is served: the bound on how long
	// a session that left Redis without a revocation (evicted, lost in a
	// failover) can still be served. Default DefaultCacheTTL (5 minutes);
	// negative disables the cache. Revocations reach every instance's
	// cache sooner, over pub/sub, and the cache is flushed when that drops.
	CacheTTL time.Duration
	// WaitReplicas is how many replicas must acknowledge a new session
	// (Redis WAIT) before sign-in completes, so that a failover right after
	// cannot lose it. Default 0: sign-in does not wait, and a session made
	// just before its master dies can be lost (the user signs in again).
	// A master with fewer connected replicas waits for those it has (none:
	// no wait); connected replicas that do not acknowledge within
	// WaitTimeout fail the sign-in. Revocations wait for every connected
	// replica whatever this says.
	WaitReplicas int
	// WaitTimeout bounds each wait for replicas, within the caller's
	// deadline. Default DefaultWaitTimeout.
	WaitTimeout time.Duration
}

// validateWait checks WaitReplicas and WaitTimeout.
func (c RedisConfig) validateWait() error {
	if c.WaitReplicas < 0 {
		return errors.New("wait_replicas must not be negative")
	}
	if c.WaitTimeout < 0 {
		return errors.New("wait_timeout must not be negative")
	}
	return nil
}

// Validate reports a configuration that cannot work, saying what to fix.
func (c RedisConfig) Validate() error {
	_, err := c.UniversalOptions()
	return err
}

// keyPrefix returns the prefix to use for realm, or an error saying what is
// wrong.
func (c RedisConfig) keyPrefix(realm string) (string, error) {
	p := c.KeyPrefix
	if p == "" {
		return DefaultKeyPrefixFor(realm), nil
	}
	if strings.ContainsAny(p, "{}") {
		return "", errors.New("key_prefix must not contain '{' or '}': they would change the Redis Cluster hash slot")
	}
	if len(p) > maxKeyPrefixBytes {
		return "", fmt.Errorf("key_prefix is %d bytes, the limit is %d: every session key carries it", len(p), maxKeyPrefixBytes)
	}
	return p, nil
}

// UniversalOptions maps the configuration to go-redis options.
func (c RedisConfig) UniversalOptions() (*redis.UniversalOptions, error) {
	if _, err := c.keyPrefix(""); err != nil {
		return nil, err
	}
	if c.DialTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 {
		return nil, errors.New("dial, read and write timeouts must not be negative")
	}
	if c.PoolSize < 0 {
		return nil, errors.New("pool_size must not be negative")
	}
	if c.DB < 0 {
		return nil, errors.New("db must not be negative")
	}
	if err := c.validateWait(); err != nil {
		return nil, err
	}

	var o *redis.UniversalOptions
	var err error
	switch {
	case c.URL != "":
		if len(c.Addrs) > 0 || c.MasterName != "" || c.Cluster {
			return nil, errors.New("url is for a standalone server: for Sentinel or Cluster give addrs with master_name or cluster instead")
		}
		o, err = c.standaloneOptions()
	case c.MasterName != "":
		if c.Cluster {
			return nil, errors.New("choose master_name (Sentinel) or cluster, not both")
		}
		o, err = c.seedOptions("sentinel")
		if err == nil {
			o.MasterName = c.MasterName
			o.SentinelUsername = c.SentinelUsername
			o.SentinelPassword = c.SentinelPassword
		}
	case c.Cluster:
		if c.DB != 0 {
			return nil, errors.New("redis cluster has only database 0: remove db")
		}
		o, err = c.seedOptions("cluster")
		if err == nil {
			o.IsClusterMode = true
		}
	case len(c.Addrs) > 0:
		return nil, errors.New("addrs need master_name (Sentinel) or cluster; for one standalone server use url redis://host:port")
	default:
		return nil, errors.New("no redis server given: set url redis://host:port/db, or addrs with master_name (Sentinel) or cluster")
	}
	if err != nil {
		return nil, err
	}
	if (c.SentinelUsername != "" || c.SentinelPassword != "") && c.MasterName == "" {
		return nil, errors.New("sentinel username and password need master_name")
	}
	// Maintenance notifications are a Redis Enterprise handshake that
	// open-source Redis refuses; go-redis's automatic fallback then rewrites
	// options that the connections of Client.Conn (used for WAIT) share, a
	// data race when two connect at once, as after a failover.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	if c.TLS || c.TLSCAFile != "" || c.TLSServerName != "" || c.TLSInsecureSkipVerify {
		if !c.TLS && o.TLSConfig == nil {
			return nil, errors.New("tls_ca_file, tls_server_name and tls_insecure_skip_verify need tls enabled (or a rediss:// url)")
		}
		if o.TLSConfig == nil {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if c.TLSServerName != "" {
			o.TLSConfig.ServerName = c.TLSServerName
		}
		o.TLSConfig.InsecureSkipVerify = c.TLSInsecureSkipVerify
		if c.TLSCAFile != "" {
			pool, err := loadCAFile(c.TLSCAFile)
			if err != nil {
				return nil, err
			}
			o.TLSConfig.RootCAs = pool
		}
	}

	if c.DialTimeout > 0 || o.DialTimeout == 0 {
		o.DialTimeout = durationOr(c.DialTimeout, DefaultRedisDialTimeout)
	}
	if c.ReadTimeout > 0 || o.ReadTimeout == 0 {
		o.ReadTimeout = durationOr(c.ReadTimeout, DefaultRedisReadTimeout)
	}
	if c.WriteTimeout > 0 || o.WriteTimeout == 0 {
		o.WriteTimeout = durationOr(c.WriteTimeout, DefaultRedisWriteTimeout)
	}
	if c.PoolSize > 0 {
		o.PoolSize = c.PoolSize
	}
	// A request's context deadline then bounds every Redis call it makes.
	o.ContextTimeoutEnabled = true
	return o, nil
}

// standaloneOptions parses URL. Errors never repeat the URL: it may hold a
// password.
func (c RedisConfig) standaloneOptions() (*redis.UniversalOptions, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis url is not a valid URL: use redis://[user:password@]host:port/db: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, fmt.Errorf("redis url scheme %q is not supported: use redis://, rediss:// (TLS) or unix://", u.Scheme)
	}
	if (u.Scheme == "redis" || u.Scheme == "rediss") && u.Host == "" {
		return nil, errors.New("redis url has no host: use redis://host:port/db")
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword && c.Password != "" {
			return nil, errors.New("redis password is set both in url and in password: keep one")
		}
		if u.User.Username() != "" && c.Username != "" {
			return nil, errors.New("redis username is set both in url and in username: keep one")
		}
	}
	if u.Path != "" && u.Path != "/" && u.Scheme != "unix" && c.DB != 0 {
		return nil, errors.New("redis database is set both in url path and in db: keep one")
	}
	ro, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url is not one go-redis reads: use redis://[user:password@]host:port/db: %w", err)
	}
	o := &redis.UniversalOptions{
		Addrs:           []string{ro.Addr},
		ClientName:      ro.ClientName,
		DB:              ro.DB,
		Protocol:        ro.Protocol,
		Username:        ro.Username,
		Password:        ro.Password,
		MaxRetries:      ro.MaxRetries,
		MinRetryBackoff: ro.MinRetryBackoff,
		MaxRetryBackoff: ro.MaxRetryBackoff,
		DialTimeout:     ro.DialTimeout,
		ReadTimeout:     ro.ReadTimeout,
		WriteTimeout:    ro.WriteTimeout,
		PoolFIFO:        ro.PoolFIFO,
		PoolSize:        ro.PoolSize,
		PoolTimeout:     ro.PoolTimeout,
		MinIdleConns:    ro.MinIdleConns,
		MaxIdleConns:    ro.MaxIdleConns,
		MaxActiveConns:  ro.MaxActiveConns,
		ConnMaxIdleTime: ro.ConnMaxIdleTime,
		ConnMaxLifetime: ro.ConnMaxLifetime,
		TLSConfig:       ro.TLSConfig,
	}
	if c.Username != "" {
		o.Username = c.Username
	}
	if c.Password != "" {
		o.Password = c.Password
	}
	if c.DB != 0 {
		o.DB = c.DB
	}
	return o, nil
}

// seedOptions checks Addrs for Sentinel or Cluster.
func (c RedisConfig) seedOptions(mode string) (*redis.UniversalOptions, error) {
	if len(c.Addrs) == 0 {
		return nil, fmt.Errorf("%s needs addrs: list one or more host:port seeds", mode)
	}
	for _, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("%s address %q is not host:port", mode, a)
		}
	}
	return &redis.UniversalOptions{
		Addrs:    append([]string(nil), c.Addrs...),
		Username: c.Username,
		Password: c.Password,
		DB:       c.DB,
	}, nil
}

func loadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading tls_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls_ca_file %s holds no PEM certificate: give a PEM bundle of CA certificates", path)
	}
	return pool, nil
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
