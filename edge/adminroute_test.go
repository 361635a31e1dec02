package edge

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// /auth/admin/ goes to the site admin API when it is on, and on to the app
// when it is off.
func TestAdminAPIRoute(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	app := nextFunc(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(http.StatusNoContent); return nil })
	on := newTestGateway(t, issuer.EdDSA, nil, func(c *Config) { c.AdminAPI = api })
	off := newTestGateway(t, issuer.EdDSA, nil)
	for _, tc := range []struct {
		g    *Gateway
		path string
		want int
	}{
		{on, "/auth/admin/users/x/sessions", http.StatusTeapot},
		{on, "/auth/admin", http.StatusTeapot},
		{on, "/auth/administrator", http.StatusNoContent},
		{off, "/auth/admin/users/x/sessions", http.StatusNoContent},
	} {
		rec := httptest.NewRecorder()
		if err := tc.g.ServeHTTP(rec, httptest.NewRequest("DELETE", testIssuer+tc.path, nil), app); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tc.want {
			t.Errorf("%s (api on %v) = %d; want %d", tc.path, tc.g == on, rec.Code, tc.want)
		}
	}
}
