package cookies

import "testing"

func TestName(t *testing.T) {
	if got := Name(Link, true, "_abc"); got != "__Host-convex_auth_link_abc" {
		t.Errorf("secure: %q", got)
	}
	if got := Name(Flow, false, ""); got != "convex_auth_flow" {
		t.Errorf("plain: %q", got)
	}
}

func TestIsInternal(t *testing.T) {
	for name, want := range map[string]bool{
		"convex_auth_link":               true,
		"convex_auth_link_abcdefgh":      true,
		"__Host-convex_auth_flow_x":      true,
		"__host-CONVEX_AUTH_FLOW":        true,
		"__Secure-convex_auth_device_ab": true,
		"convex_auth_device":             true,
		"convex_auth_linkx":              false,
		"convex_auth_":                   false,
		"convex_auth_other":              false,
		"convex_session":                 false,
		"__Host-":                        false,
		"":                               false,
		"xconvex_auth_link":              false,
	} {
		if got := IsInternal(name); got != want {
			t.Errorf("IsInternal(%q) = %v; want %v", name, got, want)
		}
	}
	for _, base := range Internal {
		for _, secure := range []bool{false, true} {
			if name := Name(base, secure, "_tag12345"); !IsInternal(name) {
				t.Errorf("%q is not internal", name)
			}
		}
	}
}
