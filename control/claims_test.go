package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/control"
	"github.com/convex-auth/caddy-convex-auth/session"
)

func TestRefreshClaims(t *testing.T) {
	s := session.NewMemoryStore(session.Options{})
	defer s.Close()
	var refreshed []string
	var fail error
	withClaims := realmOf("claims", "https://app.example.com", s)
	withClaims.RefreshClaims = func(_ context.Context, userID string) error {
		refreshed = append(refreshed, userID)
		return fail
	}
	without := realmOf("plain", "https://other.example.com", s)
	h, err := control.NewHandler(control.Config{
		Prefix: "/auth/admin",
		Realms: func() []control.Realm { return []control.Realm{withClaims, without} },
		Secret: testSecret,
		Logger: zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, secret string) (int, map[string]any) {
		req := httptest.NewRequest(method, "https://app.example.com"+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}

	if code, body := call("POST", "/auth/admin/users/u%2F1/claims/refresh?realm=claims", testSecret); code != http.StatusOK || body["refreshed"] != true {
		t.Fatalf("refresh: %d %v", code, body)
	}
	if len(refreshed) != 1 || refreshed[0] != "u/1" {
		t.Fatalf("refreshed %q; want the one user u/1", refreshed)
	}
	for _, c := range []struct {
		method, path, secret string
		status               int
		code                 string
	}{
		{"GET", "/auth/admin/users/u1/claims/refresh?realm=claims", testSecret, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"POST", "/auth/admin/users/u1/claims/refresh?realm=claims", "wrong-secret-of-sufficient-length-000000", http.StatusUnauthorized, "unauthorized"},
		{"POST", "/auth/admin/users/u1/claims/refresh?realm=plain", testSecret, http.StatusNotFound, "no_claims"},
		{"POST", "/auth/admin/users/u1/claims/other?realm=claims", testSecret, http.StatusNotFound, "not_found"},
	} {
		if code, body := call(c.method, c.path, c.secret); code != c.status || body["error"] != c.code {
			t.Errorf("%s %s: %d %v; want %d %s", c.method, c.path, code, body, c.status, c.code)
		}
	}
	if len(refreshed) != 1 {
		t.Fatalf("refused calls refreshed: %q", refreshed)
	}
	fail = errors.Join(session.ErrUnavailable, errors.New("redis down"))
	if code, body := call("POST", "/auth/admin/users/u1/claims/refresh?realm=claims", testSecret); code != http.StatusServiceUnavailable || body["error"] != "store_unavailable" {
		t.Fatalf("a store that fails: %d %v", code, body)
	}
}
