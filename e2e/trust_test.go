package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestUpstreamSignInAndCookieSpoofingAgainstTheBinary attacks the built
// binary: a link (GET) or a cross-site form to the app's sign-in route
// signs nobody in, and client-made copies of the token cookie in the
// spellings lenient frameworks read never reach the app.
func TestUpstreamSignInAndCookieSpoofingAgainstTheBinary(t *testing.T) {
	gatewayPort, appPort := freePort(t), freePort(t)
	origin := fmt.Sprintf("http://127.0.0.1:%d", gatewayPort)
	startCaddy(t, fmt.Sprintf(`{
	admin off
	storage file_system %s
}
http://127.0.0.1:%d {
	convex_auth {
		issuer https://app.example.com
		inject cookie convex_jwt
		trust_upstream_sign_in /signin
	}
	reverse_proxy 127.0.0.1:%d
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	route /signin {
		header Convex-Auth-Sign-In `+"`"+`{"sub":"user_victim_of_csrf"}`+"`"+`
		respond "signed in"
	}
	respond "cookie=[{http.request.header.Cookie}] token=[{http.request.header.X-Convex-Token}]"
}
`, t.TempDir(), gatewayPort, appPort, appPort), t.TempDir(), origin+"/.well-known/jwks.json")

	signsIn := func(resp *http.Response) bool {
		for _, c := range resp.Cookies() {
			if strings.Contains(c.Name, "convex_session") && c.Value != "" {
				return true
			}
		}
		return false
	}
	for _, tt := range []struct {
		name, method string
		headers      map[string]string
	}{
		{"a link (GET)", "GET", nil},
		{"a cross-site form", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
		{"a form from another origin", "POST", map[string]string{"Origin": "https://evil.example"}},
	} {
		resp, body := request(t, tt.method, origin+"/signin", tt.headers)
		if signsIn(resp) || resp.Header.Get("Convex-Auth-Sign-In") != "" {
			t.Errorf("%s signed the browser in (status %d, body %q)", tt.name, resp.StatusCode, body)
		}
	}
	resp, _ := request(t, "POST", origin+"/signin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": origin})
	session := sessionCookie(t, resp)

	forged := []string{
		"a=b, convex_jwt=forged1",
		"\xa0convex_jwt=forged2",
		"convex%5Fjwt=forged3",
		"CONVEX_JWT=forged4",
		"convex_jwt\u3000=forged5",
	}
	for _, signedIn := range []bool{false, true} {
		cookie := strings.Join(append(forged, "theme=dark"), "; ")
		if signedIn {
			cookie += "; " + session.Name + "=" + session.Value
		}
		resp, body := request(t, "GET", origin+"/page", map[string]string{
			"Cookie":         cookie,
			"X_Convex_Token": "forged6",
			"x-convex-token": "forged7",
		})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("signed in %v: status %d %q", signedIn, resp.StatusCode, body)
		}
		if strings.Contains(body, "forged") {
			t.Errorf("signed in %v: a client copy reached the app: %q", signedIn, body)
		}
		if !strings.Contains(body, "theme=dark") {
			t.Errorf("signed in %v: the app lost an ordinary cookie: %q", signedIn, body)
		}
		if got := strings.Contains(body, "convex_jwt=ey"); got != signedIn {
			t.Errorf("signed in %v: the gateway's own token cookie present = %v: %q", signedIn, got, body)
		}
	}
}
