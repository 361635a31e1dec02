package edge

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Two realms on one host get distinct default cookie names, on plain http
// and over HTTPS; a configured name is kept for every realm.
func TestDefaultCookieNameIsTheRealms(t *testing.T) {
	plain := httptest.NewRequest("GET", "http://localhost:8080/", nil)
	secure := httptest.NewRequest("GET", "https://app.example.com/", nil)
	defaults, err := NewCookieSettings("", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	a, b := defaults.WithRealm("http://localhost:8080 convex"), defaults.WithRealm("http://localhost:9090 convex")
	for _, tt := range []struct {
		r      string
		got    string
		prefix string
	}{
		{"plain", a.NameFor(plain), DefaultCookieName + "_"},
		{"secure", a.NameFor(secure), DefaultSecureCookieName + "_"},
	} {
		if !strings.HasPrefix(tt.got, tt.prefix) || len(tt.got) != len(tt.prefix)+cookieRealmTagLen || !ValidCookieName(tt.got) {
			t.Errorf("%s default name %q; want %s and %d characters of the realm's tag", tt.r, tt.got, tt.prefix, cookieRealmTagLen)
		}
	}
	if a.NameFor(plain) == b.NameFor(plain) || a.NameFor(secure) == b.NameFor(secure) {
		t.Fatal("two realms share a default cookie name")
	}
	if got := a.NameFor(plain); got != DefaultCookieNameFor("http://localhost:8080 convex", false) {
		t.Fatalf("NameFor = %q; DefaultCookieNameFor disagrees", got)
	}
	if got := defaults.WithRealm("x").WithRealm("x").NameFor(secure); got != DefaultCookieNameFor("x", true) {
		t.Fatalf("secure name %q; want %q", got, DefaultCookieNameFor("x", true))
	}
	named, err := NewCookieSettings("sid", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := named.WithRealm("http://localhost:8080 convex").NameFor(plain); got != "sid" {
		t.Fatalf("configured name became %q", got)
	}
}
