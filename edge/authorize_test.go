package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/authz"
	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// claimsApp stands in for the app's Convex deployment: its claims query
// answers from roles and orgs, for the user the token names.
type claimsApp struct {
	mu    sync.Mutex
	roles map[string]string
	orgs  map[string][]string
	down  bool
	calls atomic.Int64
	subs  []string // the sub of each call's token
	extra []string // claims each call's token carried besides the gateway's
}

func (a *claimsApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	var payload map[string]any
	if parts := strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "."); len(parts) == 3 {
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(b, &payload)
	}
	sub, _ := payload["sub"].(string)
	var body struct {
		Args struct {
			Context map[string]string `json:"context"`
		} `json:"args"`
	}
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.subs = append(a.subs, sub)
	for name := range payload {
		switch name {
		case "iss", "sub", "aud", "sid", "iat", "exp", "email", "email_verified", "name", "picture", "auth_time", "amr":
		default:
			a.extra = append(a.extra, name)
		}
	}
	if a.down {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	value := map[string]any{"role": a.roles[sub]}
	if org := body.Args.Context["org"]; org != "" {
		ok := false
		for _, o := range a.orgs[sub] {
			ok = ok || o == org
		}
		if !ok {
			_, _ = io.WriteString(w, `{"status":"success","value":null}`)
			return
		}
		value["org"] = org
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "value": value})
	_, _ = w.Write(b)
}

// protectedMetrics records ProtectedMetrics and ClaimsMetrics.
type protectedMetrics struct {
	noMetrics
	mu      sync.Mutex
	counts  map[string]int // "path outcome"
	queries map[string]int
}

func (m *protectedMetrics) Protected(path string, o ProtectedOutcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[path+" "+string(o)]++
}

func (m *protectedMetrics) ClaimsQuery(outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queries[outcome]++
}

func (m *protectedMetrics) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[key]
}

type authzFixture struct {
	g       *Gateway
	st      *session.MemoryStore
	app     *claimsApp
	clock   *testclock.Clock
	metrics *protectedMetrics
}

func newAuthzFixture(t *testing.T, rules ...authz.RuleConfig) *authzFixture {
	t.Helper()
	app := &claimsApp{roles: map[string]string{"admin": "admin", "member": "member"}, orgs: map[string][]string{"member": {"o1", "o2"}}}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	clock := testclock.New(time.Now().Truncate(time.Second))
	st := session.NewMemoryStore(session.Options{Now: clock.Now})
	t.Cleanup(func() { _ = st.Close() })
	compiled, err := authz.Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	m := &protectedMetrics{counts: map[string]int{}, queries: map[string]int{}}
	g := newTestGatewayFor(t, issuer.Config{Issuer: testIssuer, Now: clock.Now}, issuer.EdDSA, st, func(c *Config) {
		c.Rules = compiled
		c.Claims = &authz.ClaimsConfig{
			Query:       authz.QueryConfig{ConvexURL: srv.URL, Query: "auth:claims", Timeout: time.Second},
			TTL:         time.Minute,
			MaxStale:    10 * time.Minute,
			ContextKeys: []string{"org"},
		}
		c.ClaimsStore = st
		c.Metrics = m
	})
	return &authzFixture{g: g, st: st, app: app, clock: clock, metrics: m}
}

func (f *authzFixture) signIn(t *testing.T, userID string) string {
	t.Helper()
	tok, _, err := f.st.Create(context.Background(), session.NewSession{UserID: userID, Provider: "github",
		Profile: session.Profile{Email: userID + "@example.com", EmailVerified: true}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// request sends a navigation (html) or a fetch through the gateway and
// returns the answer and the request upstream saw (nil: none).
func (f *authzFixture) request(t *testing.T, method, target, cookieToken string, html bool, body string) (*httptest.ResponseRecorder, *http.Request) {
	t.Helper()
	r := httptest.NewRequest(method, "https://app.example.com"+target, strings.NewReader(body))
	if html {
		r.Header.Set("Sec-Fetch-Mode", "navigate")
		r.Header.Set("Accept", "text/html")
	} else {
		r.Header.Set("Sec-Fetch-Mode", "cors")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if cookieToken != "" {
		r.AddCookie(&http.Cookie{Name: f.g.cfg.Cookie.forRequest(r).name, Value: cookieToken})
	}
	var seen *http.Request
	w := httptest.NewRecorder()
	err := f.g.ServeHTTP(w, r, nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r
		w.WriteHeader(http.StatusOK)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return w, seen
}

func tokenClaims(t *testing.T, r *http.Request) map[string]any {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal(decodeSegment(t, r.Header.Get(DefaultInjectHeader)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func adminRule() authz.RuleConfig {
	return authz.RuleConfig{Paths: []string{"/admin*"}, Allow: []authz.Criterion{{Kind: authz.KindClaim, Claim: "role", Values: []string{"admin"}}}}
}

func TestRuleAdmitsAdminAndForbidsMember(t *testing.T) {
	f := newAuthzFixture(t, adminRule(), authz.RuleConfig{Paths: []string{"/loggedin*"}})
	admin, member := f.signIn(t, "admin"), f.signIn(t, "member")

	w, up := f.request(t, "GET", "/admin/users", admin, true, "")
	if w.Code != http.StatusOK || up == nil {
		t.Fatalf("admin: %d", w.Code)
	}
	if c := tokenClaims(t, up); c["role"] != "admin" || c["sub"] != "admin" {
		t.Fatalf("the admin's token: %v", c)
	}

	w, up = f.request(t, "GET", "/admin/users", member, true, "")
	if w.Code != http.StatusForbidden || up != nil || !strings.Contains(w.Body.String(), "member@example.com") || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("member navigation: %d, upstream reached %v, %q", w.Code, up != nil, w.Body.String())
	}
	w, up = f.request(t, "GET", "/admin/users", member, false, "")
	if w.Code != http.StatusForbidden || up != nil || !strings.Contains(w.Body.String(), `"error":"forbidden"`) {
		t.Fatalf("member fetch: %d, upstream reached %v, %q", w.Code, up != nil, w.Body.String())
	}
	// The member's token carries its role on open and other protected paths.
	if _, up = f.request(t, "GET", "/loggedin", member, true, ""); up == nil || tokenClaims(t, up)["role"] != "member" {
		t.Fatalf("the member on /loggedin: %v", up)
	}
	// Path variants are the same path.
	for _, p := range []string{"/Admin/users", "//admin", "/x/../admin", "/%61dmin"} {
		if w, up := f.request(t, "GET", p, member, false, ""); w.Code != http.StatusForbidden || up != nil {
			t.Errorf("%s: %d, upstream reached %v", p, w.Code, up != nil)
		}
	}
	// Signed out: as before, sign in or 401.
	if w, _ := f.request(t, "GET", "/admin", "", true, ""); w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "/auth/signin?redirectTo=%2Fadmin") {
		t.Fatalf("signed-out navigation: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w, _ := f.request(t, "GET", "/admin", "", false, ""); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"unauthenticated"`) {
		t.Fatalf("signed-out fetch: %d %s", w.Code, w.Body.String())
	}
	for key, want := range map[string]int{"/admin* admitted": 1, "/admin* forbidden": 6, "/admin* signed_out": 2, "/loggedin* admitted": 1} {
		if got := f.metrics.count(key); got != want {
			t.Errorf("metric %s = %d; want %d", key, got, want)
		}
	}
	// One query call per session, and the query's token carries no
	// custom claims.
	if n := f.app.calls.Load(); n != 2 {
		t.Errorf("%d query calls for two sessions", n)
	}
	if len(f.app.extra) != 0 {
		t.Errorf("the query's token carried %v", f.app.extra)
	}
}

func TestDenyWins(t *testing.T) {
	f := newAuthzFixture(t, authz.RuleConfig{Paths: []string{"/admin*"},
		Allow: []authz.Criterion{{Kind: authz.KindClaim, Claim: "role", Values: []string{"admin"}}, {Kind: authz.KindEmailDomain, Values: []string{"example.com"}}},
		Deny:  []authz.Criterion{{Kind: authz.KindEmail, Values: []string{"admin@example.com"}}},
	})
	if w, up := f.request(t, "GET", "/admin", f.signIn(t, "admin"), false, ""); w.Code != http.StatusForbidden || up != nil {
		t.Fatalf("a denied admin: %d", w.Code)
	}
	if w, _ := f.request(t, "GET", "/admin", f.signIn(t, "member"), false, ""); w.Code != http.StatusOK {
		t.Fatalf("an allowed domain: %d", w.Code)
	}
}

func TestClaimsUnavailableRefusesClaimRulesOnly(t *testing.T) {
	f := newAuthzFixture(t, adminRule(), authz.RuleConfig{Paths: []string{"/loggedin*"}})
	admin := f.signIn(t, "admin")
	if w, _ := f.request(t, "GET", "/admin", admin, false, ""); w.Code != http.StatusOK {
		t.Fatalf("first: %d", w.Code)
	}
	f.app.mu.Lock()
	f.app.down = true
	f.app.mu.Unlock()
	f.clock.Advance(2 * time.Minute) // past ttl, within max_stale
	if w, _ := f.request(t, "GET", "/admin", admin, false, ""); w.Code != http.StatusOK {
		t.Fatalf("within max_stale: %d", w.Code)
	}
	f.clock.Advance(10 * time.Minute) // past max_stale
	w, up := f.request(t, "GET", "/admin", admin, false, "")
	if w.Code != http.StatusServiceUnavailable || up != nil || !strings.Contains(w.Body.String(), "claims_unavailable") {
		t.Fatalf("past max_stale: %d %s", w.Code, w.Body.String())
	}
	// Paths whose rules read no claims go on, with a token without them.
	w, up = f.request(t, "GET", "/loggedin", admin, false, "")
	if w.Code != http.StatusOK || up == nil || tokenClaims(t, up)["role"] != nil {
		t.Fatalf("a rule without claims: %d", w.Code)
	}
	if f.metrics.count("/admin* claims_unavailable") != 1 {
		t.Errorf("claims_unavailable was not counted: %v", f.metrics.counts)
	}
}

func TestStepUp(t *testing.T) {
	f := newAuthzFixture(t, authz.RuleConfig{Paths: []string{"/billing*"}, MaxAge: 10 * time.Minute})
	tok := f.signIn(t, "member")
	if w, _ := f.request(t, "GET", "/billing", tok, true, ""); w.Code != http.StatusOK {
		t.Fatalf("a fresh sign-in: %d", w.Code)
	}
	f.clock.Advance(11 * time.Minute)
	w, up := f.request(t, "GET", "/billing?tab=cards", tok, true, "")
	if w.Code != http.StatusFound || up != nil || w.Header().Get("Location") != "/auth/reauth?redirectTo=%2Fbilling%3Ftab%3Dcards" {
		t.Fatalf("an old sign-in, navigation: %d %q", w.Code, w.Header().Get("Location"))
	}
	w, up = f.request(t, "GET", "/billing", tok, false, "")
	if w.Code != http.StatusUnauthorized || up != nil ||
		w.Header().Get("WWW-Authenticate") != `Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="600"` ||
		!strings.Contains(w.Body.String(), `"error":"reauthentication_required"`) {
		t.Fatalf("an old sign-in, fetch: %d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body.String())
	}
}

func TestMFAIsReserved(t *testing.T) {
	f := newAuthzFixture(t, authz.RuleConfig{Paths: []string{"/vault*"}, MFA: true})
	w, up := f.request(t, "GET", "/vault", f.signIn(t, "member"), false, "")
	if w.Code != http.StatusForbidden || up != nil || !strings.Contains(w.Body.String(), "second_factor_required") {
		t.Fatalf("mfa without a second factor: %d %s", w.Code, w.Body.String())
	}
}

func TestSessionContextSwitch(t *testing.T) {
	f := newAuthzFixture(t, authz.RuleConfig{Paths: []string{"/loggedin*"}})
	tok := f.signIn(t, "member")
	_, up := f.request(t, "GET", "/loggedin", tok, false, "")
	before := up.Header.Get(DefaultInjectHeader)
	if tokenClaims(t, up)["org"] != nil {
		t.Fatal("an org before any switch")
	}

	w, _ := f.request(t, "POST", "/auth/session/context", tok, false, `{"org":"o2"}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"org":"o2"`) {
		t.Fatalf("switch to o2: %d %s", w.Code, w.Body.String())
	}
	_, up = f.request(t, "GET", "/loggedin", tok, false, "")
	if tokenClaims(t, up)["org"] != "o2" || up.Header.Get(DefaultInjectHeader) == before {
		t.Fatalf("the next token after the switch: %v", tokenClaims(t, up))
	}

	// An org the query refuses: 403, and the session keeps o2.
	if w, _ := f.request(t, "POST", "/auth/session/context", tok, false, `{"org":"o9"}`); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "context_refused") {
		t.Fatalf("a refused org: %d %s", w.Code, w.Body.String())
	}
	f.clock.Advance(2 * time.Minute) // the next result is asked in the stored context
	if _, up = f.request(t, "GET", "/loggedin", tok, false, ""); tokenClaims(t, up)["org"] != "o2" {
		t.Fatalf("after a refused switch: %v", tokenClaims(t, up))
	}

	for _, c := range []struct {
		body, cookie string
		crossSite    bool
		want         int
	}{
		{`{"team":"t1"}`, tok, false, http.StatusBadRequest},
		{`not json`, tok, false, http.StatusBadRequest},
		{`{"org":"o1"}`, "", false, http.StatusUnauthorized},
		{`{"org":"o1"}`, tok, true, http.StatusForbidden},
	} {
		r := httptest.NewRequest("POST", "https://app.example.com/auth/session/context", strings.NewReader(c.body))
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		if c.crossSite {
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		if c.cookie != "" {
			r.AddCookie(&http.Cookie{Name: f.g.cfg.Cookie.forRequest(r).name, Value: c.cookie})
		}
		w := httptest.NewRecorder()
		_ = f.g.ServeHTTP(w, r, nextNoop)
		if w.Code != c.want {
			t.Errorf("%s (cross-site %v, cookie %v): %d; want %d", c.body, c.crossSite, c.cookie != "", w.Code, c.want)
		}
	}
}

// TestTokenFollowsClaims: a reused token is reused only while the claims
// it carries are the session's.
func TestTokenFollowsClaims(t *testing.T) {
	f := newAuthzFixture(t, authz.RuleConfig{Paths: []string{"/loggedin*"}})
	tok := f.signIn(t, "member")
	_, up := f.request(t, "GET", "/loggedin", tok, false, "")
	first := up.Header.Get(DefaultInjectHeader)
	if _, up = f.request(t, "GET", "/loggedin", tok, false, ""); up.Header.Get(DefaultInjectHeader) != first {
		t.Fatal("the token was not reused while the claims stayed")
	}
	f.app.mu.Lock()
	f.app.roles["member"] = "admin"
	f.app.mu.Unlock()
	if err := f.g.claims.RefreshUser(context.Background(), "member"); err != nil {
		t.Fatal(err)
	}
	_, up = f.request(t, "GET", "/loggedin", tok, false, "")
	if up.Header.Get(DefaultInjectHeader) == first || tokenClaims(t, up)["role"] != "admin" {
		t.Fatalf("after a refresh: %v", tokenClaims(t, up))
	}
	// /auth/token carries them too.
	w, _ := f.request(t, "GET", "/auth/token", tok, false, "")
	var got struct{ Token string }
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	var c map[string]any
	_ = json.Unmarshal(decodeSegment(t, got.Token), &c)
	if c["role"] != "admin" {
		t.Fatalf("/auth/token's claims: %v", c)
	}
}

func TestRulesReadingClaimsNeedAClaimsBlock(t *testing.T) {
	rules, err := authz.Compile([]authz.RuleConfig{adminRule()})
	if err != nil {
		t.Fatal(err)
	}
	key, err := issuer.GenerateKey(issuer.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuer.New(issuer.Config{Issuer: testIssuer}, key)
	if err != nil {
		t.Fatal(err)
	}
	st := session.NewMemoryStore(session.Options{})
	defer st.Close()
	_, err = New(Config{Issuer: iss, Store: st, Logger: zap.NewNop(), Rules: rules})
	if err == nil || !strings.Contains(err.Error(), "no claims block") {
		t.Fatalf("New: %v", err)
	}
}

// claimsGateway is newTestGateway with claims from a stand-in query and
// a rule on /loggedin* that reads them.
func claimsGateway(tb testing.TB, alg issuer.Algorithm) *Gateway {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"success","value":{"role":"member","orgs":["o1","o2"]}}`)
	}))
	tb.Cleanup(srv.Close)
	st := session.NewMemoryStore(session.Options{})
	tb.Cleanup(func() { _ = st.Close() })
	rules, err := authz.Compile([]authz.RuleConfig{{Paths: []string{"/loggedin*"},
		Allow: []authz.Criterion{{Kind: authz.KindClaim, Claim: "role", Values: []string{"admin", "member"}}},
		Deny:  []authz.Criterion{{Kind: authz.KindEmail, Values: []string{"blocked@example.com"}}}}})
	if err != nil {
		tb.Fatal(err)
	}
	return newTestGateway(tb, alg, st, func(c *Config) {
		c.Rules = rules
		c.Claims = &authz.ClaimsConfig{Query: authz.QueryConfig{ConvexURL: srv.URL, Query: "auth:claims"}}
		c.ClaimsStore = st
	})
}

// TestClaimsAndRulesAllocateNothingMore: a returning session's request
// allocates as much with claims and a rule that reads them as without.
func TestClaimsAndRulesAllocateNothingMore(t *testing.T) {
	allocs := func(g *Gateway) float64 {
		cookie := newSession(t, g.cfg.Store, "user_bench")
		serve := func() {
			r := httptest.NewRequest(http.MethodGet, "http://app.example.com/loggedin", nil)
			r.Header.Set("Cookie", DefaultSecureCookieName+"="+cookie+"; theme=dark")
			w := httptest.NewRecorder()
			if err := g.ServeHTTP(w, r, nextNoop); err != nil || w.Code != http.StatusOK {
				t.Fatalf("status %d, %v", w.Code, err)
			}
		}
		serve() // the session's claims and token
		return testing.AllocsPerRun(200, serve)
	}
	without := allocs(newTestGateway(t, issuer.EdDSA, nil))
	with := allocs(claimsGateway(t, issuer.EdDSA))
	if with > without {
		t.Fatalf("a request allocates %v times with claims and rules, %v without", with, without)
	}
	t.Logf("%v allocations per request, with claims and rules as without", with)
}
