package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// The site admin API's changes reach the app as events with their reasons,
// and its dead-letter listing is the realm's.
func TestAdminAPISendsEvents(t *testing.T) {
	redis := redistest.StartServer(t)
	sink := newEventSink(t)
	t.Setenv("TEST_EVENTS_SECRET", testEventsSecret)
	secret := strings.Repeat("a", 40)
	t.Setenv("TEST_ADMIN_SECRET", secret)
	g := startGateway(t, redis.URL(), "provider password\n"+
		"events {\nurl "+sink.srv.URL+"\nsecret {env.TEST_EVENTS_SECRET}\nmax_backoff 1s\n}\n"+
		"admin_api {\nsecret {env.TEST_ADMIN_SECRET}\n}")
	c := browserClient()
	resp, _ := send(t, c, "POST", gatewayOrigin+"/auth/signin/password",
		url.Values{"intent": {"signup"}, "email": {"ban@example.com"}, "password": {"correct horse"}}, sameOriginPost)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", resp.StatusCode)
	}
	send(t, c, "GET", gatewayOrigin+"/loggedin", nil, navigate)
	userID, _ := tokenClaims(t, g)["sub"].(string)

	admin := func(method, path string) (int, string) {
		resp, body := send(t, http.DefaultClient, method, gatewayOrigin+"/auth/admin"+path, nil,
			map[string]string{"Authorization": "Bearer " + secret})
		return resp.StatusCode, body
	}
	if code, body := admin("POST", "/users/"+userID+"/ban"); code != http.StatusOK {
		t.Fatalf("ban: %d %s", code, body)
	}
	if code, body := admin("DELETE", "/users/"+userID); code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, body)
	}
	sink.wait(t,
		"user.created "+userID,
		"session.created "+userID,
		"user.banned "+userID,
		"session.revoked ban "+userID,
		"user.deleted "+userID,
	)

	code, body := admin("GET", "/events/dead")
	var dead struct {
		Dead []json.RawMessage `json:"dead"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &dead) != nil || len(dead.Dead) != 0 {
		t.Fatalf("dead letters: %d %s", code, body)
	}
}
