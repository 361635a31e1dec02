package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// upstream is the app behind the gateway: it records what reaches it and
// signs users in and out with the response headers the gateway trusts.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(r.Context()))
		u.mu.Unlock()
		switch r.URL.Path {
		case "/app/signin":
			in := map[string]any{"sub": r.URL.Query().Get("sub"), "email": r.URL.Query().Get("email"), "email_verified": true, "name": "Ada Lovelace"}
			b, _ := json.Marshal(in)
			w.Header().Set("Convex-Auth-Sign-In", string(b))
		case "/app/signin-malformed":
			w.Header().Set("Convex-Auth-Sign-In", "{not json")
		case "/app/signout":
			w.Header().Set("Convex-Auth-Sign-Out", "1")
		}
		fmt.Fprintf(w, "upstream saw %s", r.URL.Path)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// last returns the last request that reached the upstream.
func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("no request reached the upstream")
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

type gateway struct {
	t        *testing.T
	tester   *caddytest.Tester
	upstream *upstream
	client   *http.Client
}

// startGateway runs Caddy in-process with convex_auth in front of a
// recording upstream. extra goes inside the convex_auth block.
func startGateway(t *testing.T, redisURL, extra string) *gateway {
	return startGatewayWithGlobals(t, "", redisURL, extra)
}

// startGatewayWithGlobals adds globals to Caddy's global options block.
func startGatewayWithGlobals(t *testing.T, globals, redisURL, extra string) *gateway {
	up := newUpstream(t)
	redisLine := ""
	if redisURL != "" {
		redisLine = "redis " + redisURL
	}
	config := caddytestGlobals(t, globals) + fmt.Sprintf(`
%s {
	convex_auth {
		issuer %s
		%s
		protect /loggedin*
		trust_upstream_sign_in
		%s
	}
	request_header X-Seen-User "{http.auth.user.id}/{http.auth.user.email}/{http.auth.user.session_id}"
	reverse_proxy %s
}
`, gatewayOrigin, gatewayOrigin, redisLine, extra, strings.TrimPrefix(up.srv.URL, "http://"))
	tester := newTester(t)
	tester.InitServer(config, "caddyfile")
	return &gateway{t: t, tester: tester, upstream: up, client: noRedirectClient()}
}

// caddytestGlobals is the global options block of the in-process Caddy,
// with globals added, on a storage directory of its own.
func caddytestGlobals(t *testing.T, globals string) string {
	// Not t.TempDir: caddytest leaves this Caddy running until the next
	// test loads its config, and its TLS app may still be writing to storage
	// then, which fails a TempDir's strict cleanup ("directory not empty").
	storageDir, err := os.MkdirTemp("", "convex-auth-caddytest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(storageDir) })
	return fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	grace_period 1ns
	skip_install_trust
	storage_clean_interval off
	storage file_system %s
	%s
}
`, adminPort, httpPort, httpsPort, storageDir, globals)
}

// noRedirectClient never follows redirects, so tests see them.
func noRedirectClient() *http.Client {
	return &http.Client{
		Timeout:       testerTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends a request with the given raw headers (keys kept as written).
func (g *gateway) do(method, path string, headers map[string]string) (*http.Response, string) {
	g.t.Helper()
	return doRaw(g.t, g.client, method, gatewayOrigin+path, headers)
}

// doRaw sends a request to url with the given raw headers and reads the
// whole body.
func doRaw(t *testing.T, c *http.Client, method, url string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header[k] = []string{v}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// signIn has the upstream assert a user and returns the session cookie.
func (g *gateway) signIn(sub string, headers map[string]string) *http.Cookie {
	g.t.Helper()
	resp, _ := g.do("POST", "/app/signin?sub="+url.QueryEscape(sub)+"&email="+url.QueryEscape(sub+"@example.com"), headers)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("sign-in: status %d", resp.StatusCode)
	}
	if resp.Header.Get("Convex-Auth-Sign-In") != "" {
		g.t.Fatal("the Convex-Auth-Sign-In header reached the client")
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookieName && c.Value != "" {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				g.t.Fatalf("session cookie not HttpOnly+SameSite=Lax: %+v", c)
			}
			return c
		}
	}
	g.t.Fatalf("sign-in set no session cookie: %v", resp.Header["Set-Cookie"])
	return nil
}

func cookieHeader(c *http.Cookie) map[string]string {
	return map[string]string{"Cookie": c.Name + "=" + c.Value}
}

func clearsCookie(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookieName && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

// verifyLikeConvex checks a token the way the Convex backend does: discovery
// from iss, issuer equal byte for byte, JWKS from jwks_uri, kid, alg, aud.
func verifyLikeConvex(t *testing.T, token string) jwt.Token {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var header map[string]any
	var claims map[string]any
	for i, dst := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	// EdDSA: the generated key's default, which Convex's OIDC form accepts.
	if header["typ"] != "JWT" || header["alg"] != "EdDSA" || header["kid"] == "" {
		t.Fatalf("header = %v, want typ JWT, alg EdDSA and a kid", header)
	}
	if _, ok := claims["aud"].(string); !ok {
		t.Fatalf("aud = %#v, want a single string", claims["aud"])
	}
	iss, _ := claims["iss"].(string)
	resp, err := http.Get(iss + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disco struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	err = json.NewDecoder(resp.Body).Decode(&disco)
	resp.Body.Close()
	if err != nil || disco.Issuer != iss {
		t.Fatalf("discovery issuer %q, token iss %q (err %v)", disco.Issuer, iss, err)
	}
	resp, err = http.Get(disco.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	jwksBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("JWKS Content-Type %q", ct)
	}
	set, err := jwk.Parse(jwksBody)
	if err != nil {
		t.Fatal(err)
	}
	matching := 0
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if kid, _ := k.KeyID(); kid == header["kid"] {
			matching++
		}
	}
	if matching != 1 {
		t.Fatalf("%d JWKS keys match kid %v, want 1", matching, header["kid"])
	}
	tok, err := jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true),
		jwt.WithIssuer(gatewayOrigin), jwt.WithAudience("convex"), jwt.WithAcceptableSkew(0))
	if err != nil {
		t.Fatalf("token does not verify against the gateway's JWKS: %v", err)
	}
	return tok
}

func TestGatewayInjectsVerifiableToken(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, redis.URL(), "")
	sess := g.signIn("user-1", nil)

	resp, body := g.do("GET", "/loggedin/page", cookieHeader(sess))
	if resp.StatusCode != http.StatusOK || body != "upstream saw /loggedin/page" {
		t.Fatalf("protected page: %d %q", resp.StatusCode, body)
	}
	seen := g.upstream.last(t)
	token := seen.Header.Get(DefaultInjectHeader)
	if token == "" {
		t.Fatal("upstream got no X-Convex-Token")
	}
	// No inject cookie configured: the header alone carries the token.
	if jwtCookie, err := seen.Cookie(DefaultInjectCookie); err == nil {
		t.Fatalf("upstream got cookie convex_jwt = %v, want none (no inject cookie configured)", jwtCookie)
	}
	if _, err := seen.Cookie(sessionCookieName); err == nil {
		t.Fatal("the session cookie reached the upstream")
	}
	tok := verifyLikeConvex(t, token)
	if sub, _ := tok.Subject(); sub != "user-1" {
		t.Fatalf("sub = %q", sub)
	}
	var email, sid string
	if err := tok.Get("email", &email); err != nil || email != "user-1@example.com" {
		t.Fatalf("email claim = %q (%v)", email, err)
	}
	if err := tok.Get("sid", &sid); err != nil {
		t.Fatalf("sid claim: %v", err)
	}
	if got := seen.Header.Get("X-Seen-User"); got != fmt.Sprintf("user-1/user-1@example.com/%s", sid) {
		t.Fatalf("placeholders gave %q", got)
	}

	// Within the reuse window the same token is forwarded again.
	g.do("GET", "/loggedin/again", cookieHeader(sess))
	if again := g.upstream.last(t).Header.Get(DefaultInjectHeader); again != token {
		t.Fatal("a token minted a moment ago was not reused")
	}

	// /auth/session and /auth/token describe the same session.
	resp, body = g.do("GET", "/auth/session", cookieHeader(sess))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"id":"user-1"`) || !strings.Contains(body, fmt.Sprintf(`"id":"%s"`, sid)) {
		t.Fatalf("/auth/session: %d %s", resp.StatusCode, body)
	}
	beforeToken := time.Now()
	resp, body = g.do("GET", "/auth/token", cookieHeader(sess))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("/auth/token: %d %v", resp.StatusCode, resp.Header)
	}
	var tokenResp struct {
		Token     string `json:"token"`
		ExpiresAt int64  `json:"expiresAt"`
	}
	if err := json.Unmarshal([]byte(body), &tokenResp); err != nil {
		t.Fatal(err)
	}
	// Minted for this request: iat (whole seconds) is not before it.
	fresh := verifyLikeConvex(t, tokenResp.Token)
	freshExp, _ := fresh.Expiration()
	freshIat, _ := fresh.IssuedAt()
	if freshExp.UnixMilli() != tokenResp.ExpiresAt || freshIat.Before(beforeToken.Truncate(time.Second)) {
		t.Fatalf("/auth/token gave exp %v iat %v, expiresAt %d; asked at %v", freshExp, freshIat, tokenResp.ExpiresAt, beforeToken)
	}
}

func TestGatewayStripsSpoofedCopies(t *testing.T) {
	redis := redistest.StartServer(t)
	t.Run("default server", func(t *testing.T) {
		testStripsSpoofedCopies(t, startGateway(t, redis.URL(), ""))
	})
	// Caddy drops headers with underscores unless told to keep them; with
	// them kept, only the gateway's own stripping stands in the way.
	t.Run("underscore headers allowed", func(t *testing.T) {
		globals := "servers {\n\t\texpected_underscore_headers x_convex_token X_Convex_Token X-CONVEX_TOKEN\n\t}"
		testStripsSpoofedCopies(t, startGatewayWithGlobals(t, globals, redis.URL(), ""))
	})
}

func testStripsSpoofedCopies(t *testing.T, g *gateway) {
	sess := g.signIn("user-2", nil)
	spoof := map[string]string{
		"X-Convex-Token":      "evil-1",
		"x-convex-token":      "evil-2",
		"X_Convex_Token":      "evil-3",
		"X-CONVEX_TOKEN":      "evil-4",
		"Convex-Auth-Sign-In": `{"sub":"admin"}`,
		"Cookie":              "convex_jwt=evil-5; CONVEX_JWT=evil-6; theme=dark",
	}
	check := func(t *testing.T, wantToken bool) {
		seen := g.upstream.last(t)
		var tokens []string
		for k, v := range seen.Header {
			// Spelled out rather than normalizeHeaderName, so a bug there shows.
			folded := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			if folded == "x-convex-token" {
				tokens = append(tokens, v...)
			}
			if folded == "convex-auth-sign-in" {
				t.Fatalf("client's %s reached the upstream", k)
			}
		}
		for _, v := range tokens {
			if strings.HasPrefix(v, "evil") {
				t.Fatalf("spoofed token %q reached the upstream", v)
			}
		}
		var jwtCookies []string
		for _, c := range seen.Cookies() {
			if strings.EqualFold(c.Name, "convex_jwt") {
				jwtCookies = append(jwtCookies, c.Value)
			}
		}
		if theme, err := seen.Cookie("theme"); err != nil || theme.Value != "dark" {
			t.Fatal("the app's own cookie was lost")
		}
		if !wantToken {
			if len(tokens) != 0 || len(jwtCookies) != 0 {
				t.Fatalf("anonymous request carried tokens %v cookies %v", tokens, jwtCookies)
			}
			return
		}
		// No inject cookie configured: the header alone carries it.
		if len(tokens) != 1 || len(jwtCookies) != 0 {
			t.Fatalf("want one gateway token in the header and no convex_jwt cookie, got %v and %v", tokens, jwtCookies)
		}
	}
	t.Run("anonymous", func(t *testing.T) {
		resp, _ := g.do("GET", "/open", spoof)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		check(t, false)
	})
	t.Run("signed in", func(t *testing.T) {
		h := map[string]string{}
		for k, v := range spoof {
			h[k] = v
		}
		h["Cookie"] += "; " + sess.Name + "=" + sess.Value
		resp, _ := g.do("GET", "/loggedin", h)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		check(t, true)
	})
	t.Run("client sign-in header is not honoured", func(t *testing.T) {
		resp, _ := g.do("GET", "/open", map[string]string{"Convex-Auth-Sign-In": `{"sub":"admin"}`})
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookieName && c.Value != "" {
				t.Fatal("a client-sent sign-in header created a session")
			}
		}
	})
}

func TestGatewayProtectedPaths(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, redis.URL(), "")
	before := g.upstream.count()

	resp, _ := g.do("GET", "/loggedin/x?a=1&b=2", map[string]string{"Accept": "text/html,application/xhtml+xml"})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/auth/signin?redirectTo=%2Floggedin%2Fx%3Fa%3D1%26b%3D2" {
		t.Fatalf("navigation: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = g.do("GET", "/loggedin", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "*/*"})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("Sec-Fetch-Mode navigate: %d", resp.StatusCode)
	}
	for _, h := range []map[string]string{
		{"Accept": "application/json"},
		{"Accept": "text/html", "Sec-Fetch-Mode": "cors"},
		nil,
	} {
		resp, body := g.do("GET", "/loggedin/api", h)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error":"unauthenticated"`) {
			t.Fatalf("fetch %v: %d %s", h, resp.StatusCode, body)
		}
	}
	resp, _ = g.do("POST", "/loggedin/form", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without session: %d", resp.StatusCode)
	}
	if g.upstream.count() != before {
		t.Fatal("a refused request reached the upstream")
	}
	resp, body := g.do("GET", "/public", nil)
	if resp.StatusCode != http.StatusOK || body != "upstream saw /public" || g.upstream.last(t).Header.Get(DefaultInjectHeader) != "" {
		t.Fatalf("open path: %d %q", resp.StatusCode, body)
	}
}

func TestGatewayRefusesBadCookies(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, redis.URL(), "")
	good := g.signIn("user-3", nil)
	forged := *good
	forged.Value = good.Value[:len(good.Value)-4] + "AAAA"
	for name, value := range map[string]string{
		"forged":    forged.Value,
		"random":    "dGhpcyBpcyBub3QgYSBzZXNzaW9uIHRva2VuIGF0IGFsbA",
		"garbage":   "%%%;;==",
		"oversized": strings.Repeat("A", 8000),
	} {
		t.Run(name, func(t *testing.T) {
			resp, _ := g.do("GET", "/loggedin", map[string]string{"Cookie": sessionCookieName + "=" + value})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		})
	}
	resp, _ := g.do("GET", "/loggedin", map[string]string{"Cookie": sessionCookieName + "=" + forged.Value})
	if !clearsCookie(resp) {
		t.Fatal("a forged cookie was not cleared")
	}
	// The good session still works: bad input changed nothing.
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(good)); resp.StatusCode != http.StatusOK {
		t.Fatalf("good session after bad cookies: %d", resp.StatusCode)
	}

	// Signed out by the upstream: refused from then on.
	g.do("POST", "/app/signout", cookieHeader(good))
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(good)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session signed out by upstream: %d", resp.StatusCode)
	}

	// A malformed sign-in header from the upstream is a 502 and no session.
	resp, body := g.do("POST", "/app/signin-malformed", nil)
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, "upstream saw") || len(resp.Cookies()) != 0 {
		t.Fatalf("malformed upstream sign-in: %d %q %v", resp.StatusCode, body, resp.Cookies())
	}
}

func TestGatewaySignInRotatesSessionID(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, redis.URL(), "")
	first := g.signIn("user-4", nil)
	second := g.signIn("user-4", cookieHeader(first))
	if first.Value == second.Value {
		t.Fatal("signing in again kept the session token")
	}
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(first)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the replaced session still works: %d", resp.StatusCode)
	}
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(second)); resp.StatusCode != http.StatusOK {
		t.Fatalf("the new session does not work: %d", resp.StatusCode)
	}
}

func TestGatewaySignOut(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, redis.URL(), "")
	a := g.signIn("user-5", nil)

	for name, h := range map[string]map[string]string{
		"cross-site fetch":   {"Sec-Fetch-Site": "cross-site"},
		"same-site other":    {"Sec-Fetch-Site": "same-site"},
		"foreign origin":     {"Origin": "https://evil.example"},
		"null origin":        {"Origin": "null"},
		"cross-site, origin": {"Origin": gatewayOrigin, "Sec-Fetch-Site": "cross-site"},
	} {
		h["Cookie"] = a.Name + "=" + a.Value
		resp, _ := g.do("POST", "/auth/signout", h)
		if resp.StatusCode != http.StatusForbidden || clearsCookie(resp) {
			t.Fatalf("%s: status %d, want 403 and no cookie change", name, resp.StatusCode)
		}
	}
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(a)); resp.StatusCode != http.StatusOK {
		t.Fatalf("a refused sign-out ended the session: %d", resp.StatusCode)
	}
	if resp, _ := g.do("GET", "/auth/signout", cookieHeader(a)); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET sign-out: %d", resp.StatusCode)
	}
	resp, _ := g.do("POST", "/auth/signout", map[string]string{"Cookie": a.Name + "=" + a.Value, "Origin": gatewayOrigin, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusNoContent || !clearsCookie(resp) {
		t.Fatalf("same-origin sign-out: %d %v", resp.StatusCode, resp.Header["Set-Cookie"])
	}
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(a)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed-out session still works: %d", resp.StatusCode)
	}

	// all=1 ends every session of the user, and a form post is redirected.
	b1, b2 := g.signIn("user-6", nil), g.signIn("user-6", nil)
	other := g.signIn("user-7", nil)
	resp, _ = g.do("POST", "/auth/signout?all=1", map[string]string{"Cookie": b1.Name + "=" + b1.Value, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("form sign-out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range []*http.Cookie{b1, b2} {
		if resp, _ := g.do("GET", "/loggedin", cookieHeader(c)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("all=1 left a session working: %d", resp.StatusCode)
		}
	}
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(other)); resp.StatusCode != http.StatusOK {
		t.Fatalf("all=1 ended another user's session: %d", resp.StatusCode)
	}
	// Tokens are same-origin only too.
	if resp, _ := g.do("GET", "/auth/token", map[string]string{"Cookie": other.Name + "=" + other.Value, "Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site /auth/token: %d", resp.StatusCode)
	}
}

func TestGatewayExpiry(t *testing.T) {
	redis := redistest.StartServer(t)
	// servedWhileFresh checks that a session is served before it expires,
	// when the machine is quick enough to tell: a page answered within ttl
	// of the sign-in's start was looked up before the session could end.
	servedWhileFresh := func(g *gateway, who string, ttl time.Duration) *http.Cookie {
		start := time.Now()
		c := g.signIn(who, nil)
		resp, _ := g.do("GET", "/loggedin", cookieHeader(c))
		if took := time.Since(start); took >= ttl {
			t.Logf("%s: sign-in and first page took %v, over the %v lifetime: the fresh check says nothing", who, took, ttl)
		} else if resp.StatusCode != http.StatusOK {
			t.Fatalf("fresh session: %d", resp.StatusCode)
		}
		return c
	}
	g := startGateway(t, redis.URL(), "session_ttl 2s\n\t\tidle_ttl 1h")
	short := servedWhileFresh(g, "user-8", 2*time.Second)
	time.Sleep(2100 * time.Millisecond)
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(short)); resp.StatusCode != http.StatusUnauthorized || !clearsCookie(resp) {
		t.Fatalf("expired session: %d", resp.StatusCode)
	}

	g = startGateway(t, redis.URL(), "session_ttl 1h\n\t\tidle_ttl 1s")
	idle := servedWhileFresh(g, "user-9", time.Second)
	time.Sleep(1100 * time.Millisecond)
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(idle)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("idle-expired session: %d", resp.StatusCode)
	}
}

func TestGatewayStoreDownAndBack(t *testing.T) {
	redis := redistest.StartServer(t)
	g := startGateway(t, redis.URL(), "")
	sess := g.signIn("user-10", nil)
	redis.Stop()

	resp, body := g.do("GET", "/loggedin", cookieHeader(sess))
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "upstream saw") {
		t.Fatalf("protected path with the store down: %d %q", resp.StatusCode, body)
	}
	resp, body = g.do("GET", "/open", cookieHeader(sess))
	if resp.StatusCode != http.StatusOK || body != "upstream saw /open" || g.upstream.last(t).Header.Get(DefaultInjectHeader) != "" {
		t.Fatalf("open path with the store down: %d %q", resp.StatusCode, body)
	}

	redis.Restart()
	deadline := time.Now().Add(testerTimeout)
	for {
		resp, _ := g.do("POST", "/app/signin?sub=user-11", nil)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after redis came back: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	again := g.signIn("user-11", nil)
	if resp, _ := g.do("GET", "/loggedin", cookieHeader(again)); resp.StatusCode != http.StatusOK {
		t.Fatalf("after redis came back: %d", resp.StatusCode)
	}
}
