package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/internal/smtptest"
)

// maxNewKeysForOAuthStarts is the documented bound (docs/security.md) on
// the Redis keys that any number of OAuth starts from one client create:
// the flows live in sealed cookies, and the client's oauth_start limiter is
// one key.
const maxNewKeysForOAuthStarts = 1

// TestOAuthStartsLeaveBoundedRedisKeys sends 2,000 OAuth starts from one
// client to the built binary on Redis: the first ones (within the limit)
// redirect to the provider with a sealed flow cookie, the rest get 429, and
// Redis gains at most maxNewKeysForOAuthStarts keys.
func TestOAuthStartsLeaveBoundedRedisKeys(t *testing.T) {
	redis := redistest.StartServer(t)
	op := discoveryOnlyOP(t)
	port := freePort(t)
	gateway := fmt.Sprintf("http://127.0.0.1:%d", port)
	const allowed = 1000
	config := fmt.Sprintf(`{
	admin off
	storage file_system %s
}
http://127.0.0.1:%d {
	convex_auth {
		issuer %s
		redis %s
		provider oidc local {
			issuer %s
			client_id e2e-client
			client_secret e2e-secret
		}
		limits {
			oauth_start %d/h
		}
	}
	respond "app page"
}
`, t.TempDir(), port, gateway, redis.URL(), op, allowed)
	startCaddy(t, config, t.TempDir(), gateway+"/.well-known/jwks.json")

	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	before := rdb.DBSize(ctx).Val()

	client := &http.Client{Timeout: requestTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var redirected, limited int
	began := time.Now()
	for i := range 2000 {
		resp, err := client.Get(gateway + "/auth/signin/local?redirectTo=/" + strings.Repeat("x", 1500))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusFound:
			redirected++
			if !strings.HasPrefix(resp.Header.Get("Location"), op) || !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "convex_auth_flow_") {
				t.Fatalf("start %d: redirect to %q, cookie %q", i, resp.Header.Get("Location"), resp.Header.Get("Set-Cookie"))
			}
		case http.StatusTooManyRequests:
			limited++
			if resp.Header.Get("Retry-After") == "" {
				t.Fatalf("start %d: 429 without Retry-After", i)
			}
		default:
			t.Fatalf("start %d: %d", i, resp.StatusCode)
		}
	}
	// The limit refills one start per hour/allowed (3.6 s): a run that took
	// longer was allowed that many more.
	refilled := int(time.Since(began) / (time.Hour / allowed))
	if redirected < allowed || redirected > allowed+refilled+1 || redirected+limited != 2000 {
		t.Fatalf("%d redirected, %d limited in %v; want %d (up to %d more refilled meanwhile) and the rest limited",
			redirected, limited, time.Since(began).Round(time.Millisecond), allowed, refilled+1)
	}
	after := rdb.DBSize(ctx).Val()
	if after-before > maxNewKeysForOAuthStarts {
		keys, _ := rdb.Keys(ctx, "*").Result()
		t.Fatalf("2,000 OAuth starts left %d new Redis keys; want at most %d: %v", after-before, maxNewKeysForOAuthStarts, keys)
	}
}

// discoveryOnlyOP serves just the OIDC discovery document: enough for
// sign-in starts, which only build the authorization URL.
func discoveryOnlyOP(t *testing.T) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/keys", "userinfo_endpoint": srv.URL + "/userinfo",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestEmailLinkBoundToBrowser: against the built binary, a magic link asked
// for in browser A and opened in browser B does not sign B in without the
// code; the page names the account; five wrong codes kill the link; the
// link's URL read from Caddy's access log signs nobody in, and once another
// browser opened it, A needs the code too.
func TestEmailLinkBoundToBrowser(t *testing.T) {
	sink := smtptest.Start(t, nil, "", "")
	port := freePort(t)
	gateway := fmt.Sprintf("http://127.0.0.1:%d", port)
	smtpHost, smtpPort, _ := net.SplitHostPort(sink.Addr)
	config := fmt.Sprintf(`{
	admin off
	storage file_system %s
}
http://127.0.0.1:%d {
	log {
		output stdout
		format json
	}
	convex_auth {
		issuer %s
		provider email {
			smtp_host %s
			smtp_port %s
			smtp_tls none
			from login@example.com
		}
	}
	respond "app page"
}
`, t.TempDir(), port, gateway, smtpHost, smtpPort)
	p := startCaddy(t, config, t.TempDir(), gateway+"/.well-known/jwks.json")

	a, b := newJarClient(t), newJarClient(t)
	askLink := func(c *http.Client) (link, code string) {
		t.Helper()
		resp, body := formPost(t, c, gateway+"/auth/signin/email", url.Values{"email": {"ada@example.com"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Check your email") {
			t.Fatalf("asking for a link: %d", resp.StatusCode)
		}
		return nextLinkAndCode(t, sink)
	}
	link, code := askLink(a)

	// B sees whose link it is and must type the code.
	resp, page := get(t, b, link)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<strong>ada@example.com</strong>") || !strings.Contains(page, `name="code"`) {
		t.Fatalf("opening A's link in B: %d; want the account named and a code field:\n%s", resp.StatusCode, page)
	}
	token := mustParse(t, link).Query().Get("token")
	if resp, _ := formPost(t, b, gateway+"/auth/callback/email", url.Values{"token": {token}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("B's Continue without the code: %d; want 400", resp.StatusCode)
	}
	expectSignedOut(t, b, gateway, "B, without the code")
	// Five wrong codes kill it, for the right code and for A as well.
	wrong := "00000000"
	if code == wrong {
		wrong = "11111111"
	}
	for i := 1; i <= 5; i++ {
		if resp, _ := formPost(t, b, gateway+"/auth/callback/email", url.Values{"token": {token}, "code": {wrong}}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong code %d: %d", i, resp.StatusCode)
		}
	}
	if resp, page := formPost(t, b, gateway+"/auth/callback/email", url.Values{"token": {token}, "code": {code}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Request a new one") {
		t.Fatalf("the right code after five wrong ones: %d", resp.StatusCode)
	}
	if resp, _ := formPost(t, a, gateway+"/auth/callback/email", url.Values{"token": {token}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("A after five wrong codes: %d", resp.StatusCode)
	}
	expectSignedOut(t, b, gateway, "B, after the link died")
	expectSignedOut(t, a, gateway, "A, after the link died")

	// A new link: its URL, as Caddy's access log has it, signs nobody in.
	link, code = askLink(a)
	token = mustParse(t, link).Query().Get("token")
	get(t, b, link) // B opens it: the access log now holds its URI
	// The access log is written after the response: wait for the line.
	var fromLog string
	for deadline := time.Now().Add(eventually); fromLog == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, m := range regexp.MustCompile(`"uri":"(/auth/callback/email\?token=[A-Za-z0-9_-]+)"`).FindAllStringSubmatch(p.Log(), -1) {
			if strings.Contains(m[1], token) {
				fromLog = m[1]
			}
		}
	}
	if fromLog == "" {
		t.Fatalf("the access log does not hold the link's URI; the test would prove nothing:\n%s", p.Log())
	}
	reader := newJarClient(t)
	resp, _ = get(t, reader, gateway+fromLog)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the logged URI: %d", resp.StatusCode)
	}
	if resp, _ := formPost(t, reader, gateway+"/auth/callback/email", url.Values{"token": {mustParse(t, gateway+fromLog).Query().Get("token")}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the logged token posted: %d; want 400", resp.StatusCode)
	}
	expectSignedOut(t, reader, gateway, "the log reader")
	// Where it was asked for, the link now needs its code too: another
	// browser presented it. With the code it works there.
	if resp, _ := formPost(t, a, gateway+"/auth/callback/email", url.Values{"token": {token}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("A using its own link without the code after B opened it: %d; want 400", resp.StatusCode)
	}
	expectSignedOut(t, a, gateway, "A, without the code")
	if resp, _ := formPost(t, a, gateway+"/auth/callback/email", url.Values{"token": {token}, "code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("A using its own link with the code: %d", resp.StatusCode)
	}
	if resp, body := get(t, a, gateway+"/auth/session"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "ada@example.com") {
		t.Fatalf("A after its link: %d %s", resp.StatusCode, body)
	}
}

func expectSignedOut(t *testing.T, c *http.Client, gateway, who string) {
	t.Helper()
	if resp, _ := get(t, c, gateway+"/auth/session"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%s: /auth/session %d; want 401", who, resp.StatusCode)
	}
}

func newJarClient(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// formPost posts as the site's own page would.
func formPost(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func mustParse(t *testing.T, u string) *url.URL {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	mailLink = regexp.MustCompile(`https?://\S+/auth/callback/email\?token=[A-Za-z0-9_-]+`)
	mailCode = regexp.MustCompile(`(?m)^(\d{8})\r?$`)
)

// nextLinkAndCode waits for the next mail and reads its link and code.
func nextLinkAndCode(t *testing.T, sink *smtptest.Server) (string, string) {
	t.Helper()
	body, err := textPart(sink.Next(t).Data)
	if err != nil {
		t.Fatal(err)
	}
	link, code := mailLink.FindString(body), mailCode.FindStringSubmatch(body)
	if link == "" || code == nil {
		t.Fatalf("the mail lacks a link or an 8-digit code:\n%s", body)
	}
	return link, code[1]
}
