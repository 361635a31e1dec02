package session

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

const testPassword = "s3cret-pa55"

func TestRedisConfigStandaloneURL(t *testing.T) {
	o, err := RedisConfig{URL: "redis://alice:" + testPassword + "@cache.internal:6380/3"}.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Addrs) != 1 || o.Addrs[0] != "cache.internal:6380" || o.Username != "alice" || o.Password != testPassword || o.DB != 3 {
		t.Fatalf("got addrs %v user %q db %d", o.Addrs, o.Username, o.DB)
	}
	if o.TLSConfig != nil || o.MasterName != "" || o.IsClusterMode {
		t.Fatal("plain redis:// must be a standalone client without TLS")
	}
	if o.DialTimeout != DefaultRedisDialTimeout || o.ReadTimeout != DefaultRedisReadTimeout || o.WriteTimeout != DefaultRedisWriteTimeout {
		t.Fatalf("timeouts %v %v %v; want the defaults", o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
	}
	if !o.ContextTimeoutEnabled {
		t.Fatal("request deadlines must bound Redis calls")
	}
	c := redis.NewUniversalClient(o)
	defer c.Close()
	if _, ok := c.(*redis.Client); !ok {
		t.Fatalf("client is %T; want *redis.Client", c)
	}
}

func TestRedisConfigURLDefaultsAndOverrides(t *testing.T) {
	o, err := RedisConfig{URL: "redis://localhost?dial_timeout=7s", Password: testPassword, DB: 2, ReadTimeout: 4 * time.Second, PoolSize: 7}.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.Addrs[0] != "localhost:6379" || o.Password != testPassword || o.DB != 2 {
		t.Fatalf("got %v db %d", o.Addrs, o.DB)
	}
	if o.DialTimeout != 7*time.Second || o.ReadTimeout != 4*time.Second || o.WriteTimeout != DefaultRedisWriteTimeout || o.PoolSize != 7 {
		t.Fatalf("timeouts %v %v %v pool %d", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolSize)
	}
}

func TestRedisConfigTLS(t *testing.T) {
	o, err := RedisConfig{URL: "rediss://cache.example.com:6380"}.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example.com" || o.TLSConfig.InsecureSkipVerify || o.TLSConfig.MinVersion < tls.VersionTLS12 {
		t.Fatalf("rediss:// TLS config %+v", o.TLSConfig)
	}

	caFile := writeTestCA(t)
	o, err = RedisConfig{URL: "redis://cache:6379", TLS: true, TLSCAFile: caFile, TLSServerName: "redis.internal"}.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || o.TLSConfig.RootCAs == nil || o.TLSConfig.ServerName != "redis.internal" || o.TLSConfig.InsecureSkipVerify {
		t.Fatalf("tls with CA file: %+v", o.TLSConfig)
	}

	o, err = RedisConfig{Addrs: []string{"a:1", "b:2"}, Cluster: true, TLS: true, TLSInsecureSkipVerify: true}.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify {
		t.Fatal("tls_insecure_skip_verify was not applied")
	}
}

func TestRedisConfigSentinel(t *testing.T) {
	o, err := RedisConfig{
		MasterName: "mymaster", Addrs: []string{"s1:26379", "s2:26379"},
		Password: testPassword, SentinelPassword: "sentinel-pass", DB: 1,
	}.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.MasterName != "mymaster" || len(o.Addrs) != 2 || o.SentinelPassword != "sentinel-pass" || o.DB != 1 || o.IsClusterMode {
		t.Fatalf("sentinel options %+v", o)
	}
	c := redis.NewUniversalClient(o)
	defer c.Close()
	if _, ok := c.(*redis.Client); !ok {
		t.Fatalf("client is %T; want a failover *redis.Client", c)
	}
}

func TestRedisConfigCluster(t *testing.T) {
	o, err := RedisConfig{Cluster: true, Addrs: []string{"n1:7000"}, Username: "bob", Password: testPassword}.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !o.IsClusterMode || o.MasterName != "" || o.Username != "bob" {
		t.Fatalf("cluster options %+v", o)
	}
	c := redis.NewUniversalClient(o)
	defer c.Close()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("client is %T; want *redis.ClusterClient", c)
	}
}

func TestRedisConfigErrors(t *testing.T) {
	caFile := writeTestCA(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  RedisConfig
		want string // part of the error that says what to fix
	}{
		{"nothing", RedisConfig{}, "set url"},
		{"bad scheme", RedisConfig{URL: "http://u:" + testPassword + "@host:6379"}, "redis://"},
		{"not a url", RedisConfig{URL: "redis://u:" + testPassword + "@host:port:bad"}, "redis://"},
		{"control character", RedisConfig{URL: "redis://u:" + testPassword + "@ho\x7fst"}, "redis://"},
		{"no host", RedisConfig{URL: "redis:///0"}, "no host"},
		{"bad db", RedisConfig{URL: "redis://u:" + testPassword + "@host:6379/zero"}, "database"},
		{"unknown option", RedisConfig{URL: "redis://host:6379?frobnicate=1"}, "frobnicate"},
		{"password twice", RedisConfig{URL: "redis://u:" + testPassword + "@host", Password: testPassword}, "keep one"},
		{"db twice", RedisConfig{URL: "redis://host/2", DB: 3}, "keep one"},
		{"url and addrs", RedisConfig{URL: "redis://host", Addrs: []string{"a:1"}}, "standalone"},
		{"url and cluster", RedisConfig{URL: "redis://host", Cluster: true}, "standalone"},
		{"addrs without mode", RedisConfig{Addrs: []string{"a:1"}}, "master_name"},
		{"sentinel without addrs", RedisConfig{MasterName: "m"}, "addrs"},
		{"sentinel and cluster", RedisConfig{MasterName: "m", Cluster: true, Addrs: []string{"a:1"}}, "not both"},
		{"cluster without addrs", RedisConfig{Cluster: true}, "addrs"},
		{"cluster with db", RedisConfig{Cluster: true, Addrs: []string{"a:1"}, DB: 2}, "database 0"},
		{"addr without port", RedisConfig{Cluster: true, Addrs: []string{"a"}}, "host:port"},
		{"sentinel password without sentinel", RedisConfig{URL: "redis://h", SentinelPassword: testPassword}, "master_name"},
		{"tls options without tls", RedisConfig{URL: "redis://h", TLSCAFile: caFile}, "tls enabled"},
		{"missing CA file", RedisConfig{URL: "rediss://h", TLSCAFile: filepath.Join(t.TempDir(), "nope.pem")}, "tls_ca_file"},
		{"CA file not PEM", RedisConfig{URL: "rediss://h", TLSCAFile: notPEM}, "PEM"},
		{"prefix with brace", RedisConfig{URL: "redis://h", KeyPrefix: "app{x}:"}, "key_prefix"},
		{"long prefix", RedisConfig{URL: "redis://h", KeyPrefix: strings.Repeat("p", 65)}, "key_prefix"},
		{"negative timeout", RedisConfig{URL: "redis://h", ReadTimeout: -time.Second}, "negative"},
		{"negative pool", RedisConfig{URL: "redis://h", PoolSize: -1}, "pool_size"},
		{"negative db", RedisConfig{URL: "redis://h", DB: -1}, "db"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: error reveals the password: %q", c.name, err)
		}
		if _, err := NewRedisStore(c.cfg, Options{}); err == nil {
			t.Errorf("%s: NewRedisStore accepted it", c.name)
		}
	}
}

func TestNewRedisStoreRejectsBadOptions(t *testing.T) {
	_, err := NewRedisStore(RedisConfig{URL: "redis://127.0.0.1:1"}, Options{IdleTTL: time.Minute, TouchInterval: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "idle_ttl") {
		t.Fatalf("touch interval above idle TTL: %v", err)
	}
}

// writeTestCA writes a self-signed CA certificate as PEM and returns its path.
func writeTestCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every topology's client leaves maintenance notifications off: with them
// on, go-redis's fallback on open-source Redis races between connections.
func TestRedisConfigMaintNotificationsOff(t *testing.T) {
	for _, c := range []RedisConfig{
		{URL: "redis://127.0.0.1:6379/0"},
		{Addrs: []string{"127.0.0.1:26379"}, MasterName: "m"},
		{Addrs: []string{"127.0.0.1:7000"}, Cluster: true},
	} {
		o, err := c.UniversalOptions()
		if err != nil {
			t.Fatal(err)
		}
		if o.MaintNotificationsConfig == nil || o.MaintNotificationsConfig.Mode != maintnotifications.ModeDisabled {
			t.Fatalf("%+v: maintenance notifications %+v, want disabled", c, o.MaintNotificationsConfig)
		}
	}
}
