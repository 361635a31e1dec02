package edge

import (
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// signInApp is an app that asserts a sign-in on every response: in a 103,
// in the final headers, or in a trailer, as the path says.
func signInApp(w http.ResponseWriter, r *http.Request) error {
	const assertion = `{"sub":"user_app","email":"app@example.com"}`
	switch r.URL.Path {
	case "/early-hints":
		w.Header().Set(HeaderUpstreamSignIn, assertion)
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del(HeaderUpstreamSignIn)
	case "/trailer":
		w.Header().Set("Trailer", HeaderUpstreamSignIn+", X-Other")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("body"))
		w.Header().Set(HeaderUpstreamSignIn, assertion)
		w.Header().Set("X-Other", "kept")
		w.Header().Set(http.TrailerPrefix+HeaderUpstreamSignOut, "1")
		return nil
	default:
		w.Header().Set(HeaderUpstreamSignIn, assertion)
	}
	_, _ = w.Write([]byte("app"))
	return nil
}

func upstreamSignInServer(t *testing.T, opts ...gatewayOption) *httptest.Server {
	t.Helper()
	opts = append([]gatewayOption{func(c *Config) { c.TrustUpstreamSignIn = true }}, opts...)
	g := newTestGateway(t, issuer.EdDSA, nil, opts...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = g.ServeHTTP(w, r, nextFunc(signInApp))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func sessionCookieSet(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == DefaultCookieName && c.Value != "" {
			return true
		}
	}
	return false
}

// TestUpstreamSignInOnlyOnSameOriginStateChangingRequests: a link (GET) or a
// cross-site form cannot make the app's sign-in header sign a browser in.
func TestUpstreamSignInOnlyOnSameOriginStateChangingRequests(t *testing.T) {
	srv := upstreamSignInServer(t)
	for _, tt := range []struct {
		name, method string
		headers      map[string]string
		want         bool
	}{
		{"GET link", http.MethodGet, nil, false},
		{"GET same-origin navigation", http.MethodGet, map[string]string{"Sec-Fetch-Site": "same-origin"}, false},
		{"HEAD", http.MethodHead, nil, false},
		{"cross-site form POST", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"foreign-origin POST", http.MethodPost, map[string]string{"Origin": "https://evil.example"}, false},
		{"same-site other origin POST", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"same-origin POST", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}, true},
		{"server-to-server POST", http.MethodPost, nil, true},
		{"same-origin PUT", http.MethodPut, map[string]string{"Origin": srv.URL}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/api/auth/login", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get(HeaderUpstreamSignIn) != "" {
				t.Fatal("the sign-in header reached the client")
			}
			if got := sessionCookieSet(resp); got != tt.want {
				t.Fatalf("signed in = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestUpstreamSignInPathsNarrowTheTrust: with upstream_sign_in_paths, only
// responses on those paths sign in.
func TestUpstreamSignInPathsNarrowTheTrust(t *testing.T) {
	srv := upstreamSignInServer(t, func(c *Config) {
		c.UpstreamSignInPaths = func(r *http.Request) (bool, error) { return strings.HasPrefix(r.URL.Path, "/api/auth/"), nil }
	})
	for path, want := range map[string]bool{"/api/auth/login": true, "/api/other": false, "/": false} {
		resp, err := http.Post(srv.URL+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := sessionCookieSet(resp); got != want {
			t.Errorf("POST %s: signed in = %v, want %v", path, got, want)
		}
	}
}

// TestUpstreamSignInHeadersNeverLeave: neither a 103 Early Hints nor a
// trailer carries the sign-in headers to the client, and neither signs in.
func TestUpstreamSignInHeadersNeverLeave(t *testing.T) {
	srv := upstreamSignInServer(t)

	var mu sync.Mutex
	var early []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		early = append(early, h)
		mu.Unlock()
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/early-hints", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(early) == 0 {
		t.Fatal("no 103 reached the client: the test app is broken")
	}
	for _, h := range early {
		if h.Get(HeaderUpstreamSignIn) != "" {
			t.Fatal("the sign-in header reached the client in a 103")
		}
		if h.Get("Link") == "" {
			t.Fatal("the 103 lost its other headers")
		}
	}
	if resp.Header.Get(HeaderUpstreamSignIn) != "" || sessionCookieSet(resp) {
		t.Fatal("a 103's sign-in header reached the final response or signed in")
	}

	resp, err = http.Post(srv.URL+"/trailer", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	resp.Body.Close()
	if resp.Trailer.Get(HeaderUpstreamSignIn) != "" || resp.Trailer.Get(HeaderUpstreamSignOut) != "" {
		t.Fatalf("a sign-in header reached the client as a trailer: %v", resp.Trailer)
	}
	if resp.Trailer.Get("X-Other") != "kept" {
		t.Fatalf("an ordinary trailer was dropped: %v", resp.Trailer)
	}
	if strings.Contains(strings.Join(resp.Header.Values("Trailer"), ","), HeaderUpstreamSignIn) {
		t.Fatal("the Trailer announcement still names the sign-in header")
	}
}
