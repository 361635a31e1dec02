package issuer

import (
	"strings"
	"testing"
)

func TestUnreachableFromCloud(t *testing.T) {
	for iss, want := range map[string]bool{
		"http://localhost:8080":           true,
		"http://app.localhost":            true,
		"http://127.0.0.1:8080":           true,
		"http://[::1]:8080":               true,
		"http://10.0.0.5":                 true,
		"http://192.168.1.20/tenant":      true,
		"http://gateway:8080":             true,
		"https://app.example.com":         false,
		"https://app.example.com/tenant":  false,
		"https://203.0.113.7":             false,
		"https://localhost.example.com":   false,
		"https://app.example.com:8443/a/": false,
	} {
		if got := UnreachableFromCloud(iss); got != want {
			t.Errorf("UnreachableFromCloud(%q) = %v, want %v", iss, got, want)
		}
	}
}

// The OIDC form for an issuer Convex's cloud cannot reach says so in the
// file, and what to print instead; a public issuer gets no such note.
func TestAuthConfigSaysWhatCloudCannotReach(t *testing.T) {
	local := []ConvexProvider{
		{Issuer: "http://localhost:8080", ApplicationID: "convex", Algorithm: EdDSA},
		{Issuer: "http://localhost:8083", ApplicationID: "convex", Algorithm: EdDSA},
		{Issuer: "https://app.example.com", ApplicationID: "convex", Algorithm: EdDSA},
	}
	out, err := AuthConfig(local, "Caddyfile", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Convex's cloud cannot reach these, names only this machine or network knows:\n//   http://localhost:8080\n//   http://localhost:8083\n// Against",
		"caddy convex-auth convex-config --static --config Caddyfile > convex/auth.config.ts",
		"algorithm ES256",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the file does not say %q:\n%s", want, out)
		}
	}
	public, err := AuthConfig(local[2:], "Caddyfile", false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(public, "cannot reach") {
		t.Errorf("a public issuer's file has a reachability note:\n%s", public)
	}
}
