package issuer

import (
	"strings"
	"testing"
	"time"
)

func TestNewValidatesIssuer(t *testing.T) {
	k := testKey(t, EdDSA)
	tests := []struct {
		issuer  string
		wantErr string // "" means accepted
	}{
		{"https://app.example.com", ""},
		{"https://app.example.com/", ""},
		{"http://localhost:8080", ""},
		{"https://app.example.com/tenant", ""},
		{"https://app.example.com/tenant/", ""},
		{"https://[::1]:8443/auth", ""},

		{"", "issuer is required"},
		{"app.example.com", "must be an absolute http or https URL"},
		{"/relative/path", "must be an absolute http or https URL"},
		{"ftp://app.example.com", "must be an absolute http or https URL"},
		{"https://", "has no host"},
		{"https:///path", "has no host"},
		{"https://:443", "has no host"},
		{"https://app.example.com?tenant=1", "must not have a query or fragment"},
		{"https://app.example.com?", "must not have a query or fragment"},
		{"https://app.example.com/#top", "must not have a query or fragment"},
		{"https://user:pw@app.example.com", "must not contain user info"},
		{" https://app.example.com", "whitespace or control characters"},
		{"https://app.example.com/ ", "whitespace or control characters"},
		{"https://app.example.com/a\tb", "whitespace or control characters"},
		{"https://app example.com", "whitespace or control characters"},
		{"https://app.example.com:port", "not a valid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.issuer, func(t *testing.T) {
			iss, err := New(Config{Issuer: tc.issuer}, k)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if got := iss.Config().Issuer; got != tc.issuer {
					t.Fatalf("issuer changed to %q, want %q byte for byte", got, tc.issuer)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "issuer") {
				t.Fatalf("error %q does not name the issuer field", err)
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	k := testKey(t, EdDSA)
	tests := []struct {
		name    string
		cfg     Config
		key     *Key
		wantErr string
	}{
		{"ttl below minimum", Config{TokenTTL: 29 * time.Second}, k, "token TTL 29s is below the minimum of 30s: Convex's browser client refreshes a token 10s before it expires"},
		{"ttl below minimum after truncation", Config{TokenTTL: 29999 * time.Millisecond}, k, "below the minimum of 30s"},
		{"negative ttl", Config{TokenTTL: -time.Minute}, k, "below the minimum"},
		{"unknown subject format", Config{Subject: "email"}, k, `subject format "email" is unknown: use "user" or "user_session"`},
		{"audience with whitespace", Config{Audience: " convex"}, k, "audience"},
		{"no signing key", Config{}, nil, "no signing key given"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Issuer = testIssuer
			_, err := New(cfg, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	iss := newTestIssuer(t, Config{}, testKey(t, EdDSA))
	cfg := iss.Config()
	if cfg.Audience != "convex" {
		t.Errorf("audience %q, want %q", cfg.Audience, DefaultAudience)
	}
	if cfg.TokenTTL != 5*time.Minute {
		t.Errorf("token TTL %s, want %s", cfg.TokenTTL, DefaultTokenTTL)
	}
	if cfg.Subject != SubjectUser {
		t.Errorf("subject format %q, want %q", cfg.Subject, SubjectUser)
	}
	if cfg.Now == nil {
		t.Errorf("Now not defaulted")
	}

	iss = newTestIssuer(t, Config{TokenTTL: MinTokenTTL, Audience: "my-app", Subject: SubjectUserSession}, testKey(t, EdDSA))
	cfg = iss.Config()
	if cfg.TokenTTL != 30*time.Second || cfg.Audience != "my-app" || cfg.Subject != SubjectUserSession {
		t.Errorf("explicit settings not kept: %+v", cfg)
	}
	iss = newTestIssuer(t, Config{TokenTTL: 90500 * time.Millisecond}, testKey(t, EdDSA))
	if got := iss.Config().TokenTTL; got != 90*time.Second {
		t.Errorf("token TTL %s, want it truncated to whole seconds (1m30s)", got)
	}
}

func TestPaths(t *testing.T) {
	tests := []struct {
		issuer, discovery, jwks string
	}{
		{"https://app.example.com", "/.well-known/openid-configuration", "/.well-known/jwks.json"},
		{"https://app.example.com/", "/.well-known/openid-configuration", "/.well-known/jwks.json"},
		{"https://app.example.com/tenant", "/tenant/.well-known/openid-configuration", "/tenant/.well-known/jwks.json"},
		{"https://app.example.com/tenant/a/", "/tenant/a/.well-known/openid-configuration", "/tenant/a/.well-known/jwks.json"},
	}
	for _, tc := range tests {
		iss := newTestIssuer(t, Config{Issuer: tc.issuer}, testKey(t, EdDSA))
		if got := iss.DiscoveryPath(); got != tc.discovery {
			t.Errorf("%s: DiscoveryPath %q, want %q", tc.issuer, got, tc.discovery)
		}
		if got := iss.JWKSPath(); got != tc.jwks {
			t.Errorf("%s: JWKSPath %q, want %q", tc.issuer, got, tc.jwks)
		}
	}
}
