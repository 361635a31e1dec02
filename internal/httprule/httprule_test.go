package httprule

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestIsLocalPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/":             true,
		"/loggedin?a=1": true,
		"":              false,
		"loggedin":      false,
		"//evil.com":    false,
		`/\evil.com`:    false,
		`/a\b`:          false,
		"https://x.io":  false,
	} {
		if got := IsLocalPath(p); got != want {
			t.Errorf("IsLocalPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestSecureRequest(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost:8080":     false,
		"localhost":          false,
		"app.localhost":      false,
		"127.0.0.1:8080":     false,
		"127.0.0.2":          false,
		"[::1]:8080":         false,
		"app.example.com":    true,
		"10.0.0.1:8080":      true,
		"localhost.evil.com": true,
	} {
		r := httptest.NewRequest("GET", "http://"+host+"/", nil)
		r.Host = host
		if got := SecureRequest(r); got != want {
			t.Errorf("SecureRequest(http://%s) = %v, want %v", host, got, want)
		}
	}
	r := httptest.NewRequest("GET", "https://localhost/", nil)
	r.TLS = &tls.ConnectionState{}
	if !SecureRequest(r) {
		t.Error("a TLS request to localhost must get Secure cookies")
	}
}
