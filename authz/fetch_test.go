package authz

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// convexStub answers /api/query as a Convex deployment does, with status
// and body, and keeps the last request.
type convexStub struct {
	status int
	body   string
	delay  time.Duration
	last   struct {
		method, path, contentType, authorization string
		body                                     map[string]any
	}
}

func (c *convexStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.last.method, c.last.path = r.Method, r.URL.Path
	c.last.contentType, c.last.authorization = r.Header.Get("Content-Type"), r.Header.Get("Authorization")
	raw, _ := io.ReadAll(r.Body)
	c.last.body = nil
	_ = json.Unmarshal(raw, &c.last.body)
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(c.status)
	_, _ = io.WriteString(w, c.body)
}

func newStubQuerier(t *testing.T, stub *convexStub, timeout time.Duration) *Querier {
	t.Helper()
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	q, err := NewQuerier(QueryConfig{ConvexURL: srv.URL + "/", Query: "auth:claims", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestQueryCallsConvexHTTPAPI(t *testing.T) {
	stub := &convexStub{status: 200, body: `{"status":"success","value":{"role":"admin","orgs":["o1"]},"logLines":[]}`}
	q := newStubQuerier(t, stub, time.Second)
	claims, err := q.Call(context.Background(), "the.jwt.token", []byte(`{"org":"o1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(claims.JSON()); got != `{"orgs":["o1"],"role":"admin"}` {
		t.Fatalf("claims %s", got)
	}
	if stub.last.method != "POST" || stub.last.path != "/api/query" || stub.last.contentType != "application/json" || stub.last.authorization != "Bearer the.jwt.token" {
		t.Fatalf("request %+v", stub.last)
	}
	body, _ := json.Marshal(stub.last.body)
	if got, want := string(body), `{"args":{"context":{"org":"o1"}},"format":"json","path":"auth:claims"}`; got != want {
		t.Fatalf("body %s; want %s", got, want)
	}
	// No context: an empty object, since the query declares context.
	if _, err := q.Call(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	if body, _ := json.Marshal(stub.last.body["args"]); string(body) != `{"context":{}}` {
		t.Fatalf("args without a context: %s", body)
	}
}

func TestQueryReplies(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   error // nil: success
		null   bool
	}{
		{"null refuses", 200, `{"status":"success","value":null,"logLines":[]}`, nil, true},
		{"empty object", 200, `{"status":"success","value":{}}`, nil, false},
		{"error, current backends", 200, `{"status":"error","errorMessage":"[Request ID: x] Server Error\nUncaught Error: boom","logLines":[]}`, ErrQueryFailed, false},
		{"error, older backends", 560, `{"status":"error","errorMessage":"Uncaught Error: boom"}`, ErrQueryFailed, false},
		{"token refused", 401, `{"code":"InvalidAuthHeader","message":"Could not verify OIDC token claim"}`, ErrQueryTransport, false},
		{"no such function", 404, `{"code":"NotFound"}`, ErrQueryTransport, false},
		{"server error", 500, `oops`, ErrQueryTransport, false},
		{"not Convex's JSON", 200, `<html>`, ErrQueryTransport, false},
		{"unknown status", 200, `{"status":"pending"}`, ErrQueryTransport, false},
		{"not an object", 200, `{"status":"success","value":["admin"]}`, ErrClaimsRefused, false},
		{"a string", 200, `{"status":"success","value":"admin"}`, ErrClaimsRefused, false},
		{"reserved name", 200, `{"status":"success","value":{"role":"admin","sub":"someone-else"}}`, ErrClaimsRefused, false},
		{"reserved profile name", 200, `{"status":"success","value":{"email_verified":true}}`, ErrClaimsRefused, false},
		{"repeated name", 200, `{"status":"success","value":{"role":"member","role":"admin"}}`, ErrClaimsRefused, false},
		{"over 4 KB", 200, `{"status":"success","value":{"blob":"` + strings.Repeat("x", MaxClaimsBytes) + `"}}`, ErrClaimsRefused, false},
	}
	for _, c := range cases {
		stub := &convexStub{status: c.status, body: c.body}
		q := newStubQuerier(t, stub, time.Second)
		claims, err := q.Call(context.Background(), "t", nil)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		case c.want == nil && c.null != (claims == nil):
			t.Errorf("%s: claims %v; null %v", c.name, claims, c.null)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: the error spans lines: %q", c.name, err)
		}
	}
}

func TestQueryTimesOut(t *testing.T) {
	stub := &convexStub{status: 200, body: `{"status":"success","value":{}}`, delay: 5 * time.Second}
	q := newStubQuerier(t, stub, 50*time.Millisecond)
	_, err := q.Call(context.Background(), "t", nil)
	if !errors.Is(err, ErrQueryTransport) || !strings.Contains(err.Error(), "within 50ms") {
		t.Fatalf("slow Convex: %v", err)
	}
}

func TestQueryConfigCheck(t *testing.T) {
	for cfg, want := range map[QueryConfig]string{
		{Query: "auth:claims"}: "convex_url is required",
		{ConvexURL: "happy-animal-123.convex.cloud", Query: "a:b"}:       "not an http(s) URL",
		{ConvexURL: "https://x.convex.cloud?a=1", Query: "a:b"}:          "not an http(s) URL",
		{ConvexURL: "https://x.convex.cloud"}:                            "query is required",
		{ConvexURL: "https://x.convex.cloud", Query: "auth claims"}:      "not a Convex function path",
		{ConvexURL: "https://x.convex.cloud", Query: "a:b", Timeout: -1}: "negative",
	} {
		if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v; want %q", cfg, err, want)
		}
	}
	for _, ok := range []string{"auth:claims", "auth", "dir/auth:claims", "auth.js:claims"} {
		if err := (QueryConfig{ConvexURL: "http://127.0.0.1:3210", Query: ok}).Check(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
