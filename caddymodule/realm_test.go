package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// sessionCookieName is the session cookie of the test gateway's default
// realm on plain http (set by TestMain, once gatewayOrigin is known).
var sessionCookieName string

func defaultSessionCookieName() string {
	return edge.DefaultCookieNameFor(session.DefaultRealm(gatewayOrigin, DefaultApplicationID), false)
}

// twoSites is one Caddy serving two convex_auth sites, A on gatewayOrigin
// and B on otherOrigin, in front of one recording upstream.
type twoSites struct {
	t        *testing.T
	upstream *upstream
	client   *http.Client
}

// startTwoSites starts the two sites; store goes into both convex_auth
// blocks, extraA and extraB into one each.
func startTwoSites(t *testing.T, store, extraA, extraB string) *twoSites {
	up := newUpstream(t)
	site := func(origin, extra string) string {
		return fmt.Sprintf(`%s {
	convex_auth {
		issuer %s
		%s
		%s
		protect /loggedin*
		trust_upstream_sign_in
	}
	reverse_proxy %s
}
`, origin, origin, store, extra, strings.TrimPrefix(up.srv.URL, "http://"))
	}
	config := caddytestGlobals(t, "") + site(gatewayOrigin, extraA) + site(otherOrigin, extraB)
	newTester(t).InitServer(config, "caddyfile")
	return &twoSites{t: t, upstream: up, client: noRedirectClient()}
}

func (s *twoSites) do(method, url string, headers map[string]string) (*http.Response, string) {
	s.t.Helper()
	return doRaw(s.t, s.client, method, url, headers)
}

func (s *twoSites) signIn(origin, sub string) (*http.Cookie, []string) {
	s.t.Helper()
	resp, _ := s.do("POST", origin+"/app/signin?sub="+sub+"&email="+sub+"%40example.com", nil)
	var sess *http.Cookie
	var names []string
	for _, c := range resp.Cookies() {
		names = append(names, c.Name)
		if strings.Contains(c.Name, "convex_session") && c.Value != "" {
			sess = c
		}
	}
	if resp.StatusCode != http.StatusOK || sess == nil {
		s.t.Fatalf("sign-in at %s: %d, cookies %v", origin, resp.StatusCode, resp.Header["Set-Cookie"])
	}
	return sess, names
}

// refusedAt checks that origin treats cookie as no session: 401 on a
// protected path and on /auth/token, no session from /auth/session, and
// nothing forwarded with a token.
func (s *twoSites) refusedAt(origin string, cookie string) {
	s.t.Helper()
	h := map[string]string{"Cookie": cookie, "Accept": "application/json"}
	before := s.upstream.count()
	if resp, body := s.do("GET", origin+"/loggedin", h); resp.StatusCode != http.StatusUnauthorized {
		s.t.Fatalf("%s/loggedin with another realm's session: %d %q; want 401", origin, resp.StatusCode, body)
	}
	if s.upstream.count() != before {
		s.t.Fatal("a protected request with another realm's session reached the upstream")
	}
	if resp, body := s.do("GET", origin+"/auth/token", h); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "token\":\"") {
		s.t.Fatalf("%s/auth/token with another realm's session: %d %q; want 401 and no token", origin, resp.StatusCode, body)
	}
	if resp, body := s.do("GET", origin+"/auth/session", h); resp.StatusCode == http.StatusOK && strings.Contains(body, "user") || resp.StatusCode == http.StatusServiceUnavailable {
		s.t.Fatalf("%s/auth/session with another realm's session: %d %q", origin, resp.StatusCode, body)
	}
	s.do("GET", origin+"/open", h)
	if got := s.upstream.last(s.t).Header.Get(DefaultInjectHeader); got != "" {
		s.t.Fatal("an open path forwarded a token for another realm's session")
	}
}

// TestTwoRealmsInOneCaddy: sites with their own issuers keep their own
// sessions, whether they share the in-process store's pool or one Redis
// (default prefixes, or one prefix where only the records tell realms
// apart); a realm named on purpose is shared.
func TestTwoRealmsInOneCaddy(t *testing.T) {
	redis := redistest.StartServer(t)
	for name, store := range map[string]string{
		"in-process":           "",
		"redis":                "redis " + redis.URL(),
		"redis, shared prefix": "redis {\n url " + redis.URL() + "\n key_prefix shared:\n}",
	} {
		t.Run(name, func(t *testing.T) {
			s := startTwoSites(t, store, "", "")
			a, names := s.signIn(gatewayOrigin, "ada")
			nameB := edge.DefaultCookieNameFor(session.DefaultRealm(otherOrigin, DefaultApplicationID), false)
			if a.Name != sessionCookieName || a.Name == nameB || !strings.HasPrefix(nameB, DefaultCookieName+"_") {
				t.Fatalf("cookie names %q (A) and %q (B): want distinct realm-suffixed defaults", a.Name, nameB)
			}
			// The browser sends A's cookie to B (same host); B does not
			// read it, and an attacker who renames it gets nowhere either.
			s.refusedAt(otherOrigin, a.Name+"="+a.Value)
			s.refusedAt(otherOrigin, nameB+"="+a.Value)
			// Signing in at B sets only B's cookie: A's survives.
			b, namesB := s.signIn(otherOrigin, "ada")
			for _, n := range namesB {
				if n == a.Name {
					t.Fatalf("signing in at B set A's cookie %q (A set %v)", n, names)
				}
			}
			if resp, _ := s.do("GET", gatewayOrigin+"/loggedin", map[string]string{"Cookie": a.Name + "=" + a.Value + "; " + b.Name + "=" + b.Value}); resp.StatusCode != http.StatusOK {
				t.Fatalf("A's session after signing in at B: %d", resp.StatusCode)
			}
			s.refusedAt(gatewayOrigin, sessionCookieName+"="+b.Value)
		})
	}
	t.Run("shared realm", func(t *testing.T) {
		s := startTwoSites(t, "", "realm example-users", "realm example-users")
		a, _ := s.signIn(gatewayOrigin, "ada")
		if a.Name != edge.DefaultCookieNameFor("example-users", false) {
			t.Fatalf("cookie %q; want the shared realm's default name", a.Name)
		}
		if resp, _ := s.do("GET", otherOrigin+"/loggedin", map[string]string{"Cookie": a.Name + "=" + a.Value}); resp.StatusCode != http.StatusOK {
			t.Fatalf("a session of the shared realm at the other site: %d; want 200", resp.StatusCode)
		}
		tok, err := jwt.ParseInsecure([]byte(s.upstream.last(t).Header.Get(DefaultInjectHeader)))
		var tokIss, tokSub string
		if err == nil {
			tokIss, _ = tok.Issuer()
			tokSub, _ = tok.Subject()
		}
		if err != nil || tokIss != otherOrigin || tokSub != "ada" {
			t.Fatalf("the other site's token: %v, %v; want its own iss for the shared user", tok, err)
		}
	})
}
