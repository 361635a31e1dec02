package httprule

import (
	"crypto/tls"
	"net"
	"net/http/httptest"
	"strings"
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

// TestIsLocalHostAsBefore compares IsLocalHost with the plain net version it
// replaced, which allocated on every request.
func TestIsLocalHostAsBefore(t *testing.T) {
	reference := func(hostport string) bool {
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			host = hostport
		}
		host = strings.Trim(host, "[]")
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return true
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	for _, h := range []string{
		"", "localhost", "localhost:3000", "app.localhost:8080", "LOCALHOST", "127.0.0.1", "127.0.0.1:8080", "127.9.9.9",
		"[::1]", "[::1]:3000", "::1", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]:80", "fe80::1%lo", "[::1%lo]:80",
		"app.example.com", "app.example.com:443", "1password.com", "10.0.0.1", "0.0.0.0", "[::]:80", "127.0.0.1:",
		"127.000.000.001", "::1:80", "a:b:c",
	} {
		if got, want := IsLocalHost(h), reference(h); got != want {
			t.Errorf("IsLocalHost(%q) = %v, before %v", h, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { IsLocalHost("app.example.com") }); n != 0 {
		t.Errorf("IsLocalHost of a name allocates %v times", n)
	}
}

func TestNavigates(t *testing.T) {
	for _, c := range []struct {
		mode, accept string
		want         bool
	}{
		{"navigate", "text/html,application/xhtml+xml", true},
		{"navigate", "", true},
		{"cors", "text/html", false}, // a script asking for HTML is still a script
		{"no-cors", "", false},
		{"same-origin", "*/*", false},
		{"", "text/html,application/xhtml+xml;q=0.9", true}, // a browser without Sec-Fetch-*
		{"", "TEXT/HTML", true},
		{"", "application/json", false},
		{"", "", false},
	} {
		r := httptest.NewRequest("POST", "https://app.example.com/auth/signin/password", nil)
		if c.mode != "" {
			r.Header.Set("Sec-Fetch-Mode", c.mode)
		}
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		if got := Navigates(r); got != c.want {
			t.Errorf("Navigates(Sec-Fetch-Mode %q, Accept %q) = %v, want %v", c.mode, c.accept, got, c.want)
		}
	}
}
