package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// TestLogsCarryNoSecrets drives every flow that logs (sign-in, tokens, bad
// cookies, sign-out, the store going away) with access logs on, then greps
// everything Caddy printed for tokens, cookie values, the Redis password and
// the signing key.
func TestLogsCarryNoSecrets(t *testing.T) {
	checkLogsCarryNoSecrets(t, "", false, `"uri":"/loggedin"`)
}

// TestDebugLogsWithTokenFilter: at Caddy's debug level reverse_proxy logs the
// upstream request's headers, the injected token among them, and Caddy logs
// the whole config. With the filter the README gives and the Redis password
// in an {env.*} placeholder, nothing secret is printed.
func TestDebugLogsWithTokenFilter(t *testing.T) {
	checkLogsCarryNoSecrets(t, `
	log default {
		level DEBUG
		format filter {
			wrap json
			request>headers>X-Convex-Token delete
		}
	}`, true, `"msg":"upstream roundtrip"`, `"logger":"go-redis"`)
}

// checkLogsCarryNoSecrets runs the flows with globalLog added to the global
// options; mustLog proves the level under test was captured.
func checkLogsCarryNoSecrets(t *testing.T, globalLog string, passwordFromEnv bool, mustLog ...string) {
	const redisPassword = "r3dis-pa55word-do-not-log"
	redis := redistest.StartServer(t, "--requirepass", redisPassword)
	passwordInConfig := redisPassword
	if passwordFromEnv {
		passwordInConfig = "{env.TEST_REDIS_PASSWORD}"
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	gatewayPort, appPort := freePort(t), freePort(t)
	gateway := fmt.Sprintf("http://127.0.0.1:%d", gatewayPort)
	config := fmt.Sprintf(`{
	admin off
	storage file_system %s%s
}
http://127.0.0.1:%d {
	log {
		output stdout
		format json
	}
	convex_auth {
		issuer https://app.example.com
		signing_key env TEST_SIGNING_KEY
		redis redis://:%s@%s/0
		protect /loggedin*
		trust_upstream_sign_in
	}
	reverse_proxy 127.0.0.1:%d
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	route /signin {
		header Convex-Auth-Sign-In `+"`"+`{"sub":"user_log","email":"log@example.com"}`+"`"+`
		respond "signed in"
	}
	respond "app page"
}
`, t.TempDir(), globalLog, gatewayPort, passwordInConfig, redis.Addr, appPort, appPort)
	escapedKey := strings.ReplaceAll(string(keyPEM), "\n", `\n`)
	p := startCaddy(t, config, t.TempDir(), gateway+"/.well-known/jwks.json",
		"TEST_SIGNING_KEY="+escapedKey, "TEST_REDIS_PASSWORD="+redisPassword)

	var secrets []string
	resp, _ := request(t, "POST", gateway+"/signin", nil)
	sess := sessionCookie(t, resp)
	secrets = append(secrets, sess.Value)
	request(t, "GET", gateway+"/loggedin", withCookie(sess))
	_, body := request(t, "GET", gateway+"/auth/token", withCookie(sess))
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.Token == "" {
		t.Fatalf("/auth/token: %s", body)
	}
	secrets = append(secrets, tok.Token, tok.Token[strings.LastIndex(tok.Token, ".")+1:])
	request(t, "GET", gateway+"/loggedin", withCookie(sess, map[string]string{"X-Convex-Token": "client-spoofed-token-value"}))
	forged := sess.Value[:len(sess.Value)-6] + "AAAAAA"
	secrets = append(secrets, forged)
	request(t, "GET", gateway+"/loggedin", map[string]string{"Cookie": sess.Name + "=" + forged})
	request(t, "POST", gateway+"/auth/signout", withCookie(sess, map[string]string{"Sec-Fetch-Site": "same-origin"}))

	resp, _ = request(t, "POST", gateway+"/signin", nil)
	second := sessionCookie(t, resp)
	secrets = append(secrets, second.Value)
	redis.Stop()
	if resp, _ := request(t, "GET", gateway+"/loggedin", withCookie(second)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("with redis down: %d", resp.StatusCode)
	}
	request(t, "GET", gateway+"/open", withCookie(second))

	// The key's base64 body, in 16-character pieces, so a re-wrapped copy
	// is caught too.
	keyBody := base64.StdEncoding.EncodeToString(der)
	for i := 0; i+16 <= len(keyBody); i += 16 {
		secrets = append(secrets, keyBody[i:i+16])
	}
	secrets = append(secrets, redisPassword)

	log := p.Log()
	for _, want := range append(mustLog, `"uri":"/loggedin"`) {
		if !strings.Contains(log, want) {
			t.Fatalf("the logs under test were not captured (no %s):\n%s", want, log)
		}
	}
	// Everything goes through Caddy's logger: go-redis's own messages too.
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("a log line is not from Caddy's logger: %.120q", line)
		}
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log contains a secret (%d bytes starting %.6q)", len(s), s)
		}
	}
}
