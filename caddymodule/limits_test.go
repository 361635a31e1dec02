package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

func TestLimitsCaddyfileAndJSON(t *testing.T) {
	input := `convex_auth {
		issuer https://app.example.com
		provider password
		limits {
			sign_up 5/h
			sign_in 20/1m
			email_send 3/90s
			oauth_start 100/m
			global_sign_up 50/h
			global_email_send 200/24h
			global_sign_in 500/h
		}
	}`
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	if err := h.checkSignIn(); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(h.SignIn)
	if !strings.Contains(string(raw), `"limits":{"sign_up":"5/h","sign_in":"20/1m","email_send":"3/90s","oauth_start":"100/m","global_sign_up":"50/h","global_email_send":"200/24h","global_sign_in":"500/h"}`) {
		t.Fatalf("JSON: %s", raw)
	}
	var back SignInOptions
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	got, err := back.Limits.limits()
	if err != nil {
		t.Fatal(err)
	}
	want := signin.Limits{
		SignUp: session.Rate{Events: 5, Per: time.Hour}, SignIn: session.Rate{Events: 20, Per: time.Minute},
		EmailSend: session.Rate{Events: 3, Per: 90 * time.Second}, OAuthStart: session.Rate{Events: 100, Per: time.Minute},
		GlobalSignUp: session.Rate{Events: 50, Per: time.Hour}, GlobalEmailSend: session.Rate{Events: 200, Per: 24 * time.Hour},
		GlobalSignIn: session.Rate{Events: 500, Per: time.Hour},
	}
	if got != want {
		t.Fatalf("limits %+v; want %+v", got, want)
	}
	// Unset limits stay zero: signin fills the defaults.
	if l, err := (&LimitsConfig{SignUp: "1/s"}).limits(); err != nil || l.SignIn != (session.Rate{}) {
		t.Fatalf("unset limit: %+v, %v", l, err)
	}
}

func TestLimitsErrors(t *testing.T) {
	for name, body := range map[string]string{
		"no block":      "limits 5/h",
		"unknown limit": "limits {\nsign_ups 5/h\n}",
		"not a rate":    "limits {\nsign_up five\n}",
		"zero events":   "limits {\nsign_up 0/h\n}",
		"short period":  "limits {\nsign_up 5/10ms\n}",
		"repeated":      "limits {\nsign_up 5/h\nsign_up 6/h\n}",
		"two values":    "limits {\nsign_up 5/h 6/h\n}",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\nprovider password\n" + body + "\n}"))
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// JSON is checked at validation.
	h := Handler{SignIn: &SignInOptions{Providers: []json.RawMessage{json.RawMessage(`{"type":"password"}`)}, Limits: &LimitsConfig{OAuthStart: "x/h"}}}
	if err := h.checkSignIn(); err == nil || !strings.Contains(err.Error(), "limits oauth_start") {
		t.Errorf("a bad JSON limit: %v", err)
	}
	// Limits without a provider mean nothing.
	var h2 Handler
	if err := h2.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\nlimits {\nsign_up 1/h\n}\n}")); err != nil {
		t.Fatal(err)
	}
	if err := h2.checkSignIn(); err == nil {
		t.Error("limits without a provider: accepted")
	}
}

// TestGatewayRateLimitByCaddysClientIP: the per-client limit counts by the
// address Caddy resolves (X-Forwarded-For from a trusted proxy), answers
// 429 with Retry-After (a page's post: back to the page, which says how
// long to wait) and counts in rate_limited_total.
func TestGatewayRateLimitByCaddysClientIP(t *testing.T) {
	startGatewayWithGlobals(t, "servers {\n\t\ttrusted_proxies static private_ranges\n\t}", "",
		"provider password\n\t\tlimits {\n\t\t\tsign_up 1/h\n\t\t}")
	before := scrapeMetrics(t)
	c := browserClient()
	signUp := func(client, email string, from map[string]string) (*http.Response, string) {
		headers := map[string]string{"X-Forwarded-For": client}
		for k, v := range from {
			headers[k] = v
		}
		return send(t, c, "POST", gatewayOrigin+"/auth/signin/password",
			url.Values{"intent": {"signup"}, "email": {email}, "password": {"correct horse"}}, headers)
	}
	if resp, _ := signUp("198.51.100.1", "one@example.com", sameOriginPost); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first sign-up: %d", resp.StatusCode)
	}
	// From a script: 429 with Retry-After; from the page: back to it,
	// saying how long to wait.
	resp, page := signUp("198.51.100.1", "two@example.com", scriptPost)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "Please wait") {
		t.Fatalf("second sign-up from one client, by a script: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, _ = signUp("198.51.100.1", "two@example.com", sameOriginPost)
	if resp, page := followBack(t, c, resp, "rate_limited"); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Please wait ") || strings.Contains(page, "Please wait a moment") {
		t.Fatalf("second sign-up from one client, from the page: %d", resp.StatusCode)
	}
	// Another client behind the same proxy has its own budget.
	if resp, _ := signUp("198.51.100.2", "three@example.com", sameOriginPost); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("another client's sign-up: %d", resp.StatusCode)
	}
	after := scrapeMetrics(t)
	series := `caddy_convex_auth_rate_limited_total{limit="sign_up"}`
	if _, ok := before[series]; !ok {
		t.Fatalf("%s is not published before it is first counted", series)
	}
	if d := after[series] - before[series]; d != 2 {
		t.Fatalf("%s rose by %v; want 2 (the script's and the page's refused sign-ups)", series, d)
	}
}
