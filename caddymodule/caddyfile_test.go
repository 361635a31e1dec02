package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	input := `convex_auth {
		issuer https://app.example.com
		application_id my-app
		realm example-users
		signing_key env CONVEX_AUTH_PRIVATE_KEY
		algorithm EdDSA
		token_ttl 2m
		token_reuse 4s
		token_reuse_margin 2m
		subject user_session
		redis redis://127.0.0.1:6379/1
		cookie {
			name sess
			same_site strict
			forward_to_upstream
		}
		session_ttl 48h
		idle_ttl 2h
		protect /loggedin* /admin
		sign_in_url /login
		after_sign_out /bye
		inject header X-Token
		inject cookie jwt
		trust_upstream_sign_in /api/auth/* /login
	}`
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", h.Issuer, "https://app.example.com"},
		{"application_id", h.ApplicationID, "my-app"},
		{"realm", h.Realm, "example-users"},
		{"signing_key", *h.SigningKey, SigningKeySource{From: "env", Env: "CONVEX_AUTH_PRIVATE_KEY"}},
		{"algorithm", h.Algorithm, "EdDSA"},
		{"token_ttl", h.TokenTTL, caddy.Duration(2 * time.Minute)},
		{"token_reuse", h.TokenReuse, caddy.Duration(4 * time.Second)},
		{"token_reuse_margin", h.TokenReuseMargin, caddy.Duration(2 * time.Minute)},
		{"subject", h.Subject, "user_session"},
		{"redis", h.Redis.URL, "redis://127.0.0.1:6379/1"},
		{"cookie name", h.Cookie.Name, "sess"},
		{"cookie same_site", h.Cookie.SameSite, "strict"},
		{"cookie forward", h.Cookie.ForwardToUpstream, true},
		{"session_ttl", h.SessionTTL, caddy.Duration(48 * time.Hour)},
		{"idle_ttl", h.IdleTTL, caddy.Duration(2 * time.Hour)},
		{"protect", strings.Join(protectPaths(h.Protect), ","), "/loggedin*,/admin"},
		{"sign_in_url", h.SignInURL, "/login"},
		{"after_sign_out", h.AfterSignOut, "/bye"},
		{"inject header", h.InjectHeader, "X-Token"},
		{"inject cookie", h.InjectCookie, "jwt"},
		{"trust_upstream_sign_in", h.TrustUpstreamSignIn, true},
		{"trust_upstream_sign_in paths", strings.Join(h.UpstreamSignInPaths, ","), "/api/auth/*,/login"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name, input, wantErr string
	}{
		{"unknown subdirective", `convex_auth { isuer https://a.example }`, `unknown subdirective "isuer"`},
		{"repeated subdirective", "convex_auth {\nissuer https://a.example\nissuer https://b.example\n}", "issuer is set more than once"},
		{"repeated inject header", "convex_auth {\ninject header A\ninject header B\n}", "inject header is set more than once"},
		{"inline argument", `convex_auth https://a.example`, "wrong argument count"},
		{"issuer without value", "convex_auth {\nissuer\n}", "issuer needs a value"},
		{"issuer with two values", "convex_auth {\nissuer a b\n}", "issuer takes one value"},
		{"bad duration", "convex_auth {\ntoken_ttl soon\n}", `token_ttl "soon" is not a duration`},
		{"negative duration", "convex_auth {\nsession_ttl -1h\n}", "session_ttl must be positive"},
		{"signing_key source", "convex_auth {\nsigning_key vault x\n}", `signing_key source "vault" is unknown`},
		{"signing_key arity", "convex_auth {\nsigning_key file\n}", "signing_key needs `file <path>` or `env <VARIABLE>`"},
		{"protect empty", "convex_auth {\nprotect\n}", "protect needs at least one path pattern"},
		{"inject kind", "convex_auth {\ninject body x\n}", `inject "body" is unknown`},
		{"inject bare", "convex_auth {\ninject\n}", "inject needs"},
		{"upstream sign-in path", "convex_auth {\ntrust_upstream_sign_in yes\n}", "trust_upstream_sign_in takes path patterns starting with /"},
		{"redis unknown option", "convex_auth {\nredis {\nhost x\n}\n}", `unknown redis option "host"`},
		{"redis repeated option", "convex_auth {\nredis {\nurl redis://a\nurl redis://b\n}\n}", "redis url is set more than once"},
		{"redis url twice", "convex_auth {\nredis redis://a {\nurl redis://b\n}\n}", "redis url is given twice"},
		{"redis empty", "convex_auth {\nredis {\n}\n}", "redis needs a URL"},
		{"redis bad db", "convex_auth {\nredis {\nurl redis://a\ndb x\n}\n}", `db "x" is not a non-negative number`},
		{"cookie unknown option", "convex_auth {\ncookie {\nsecure\n}\n}", `unknown cookie option "secure"`},
		{"cookie inline", "convex_auth {\ncookie sess\n}", "cookie takes a block"},
		{"repeated redis", "convex_auth {\nredis redis://a\nredis redis://b\n}", "redis is set more than once"},
		{"admin_api inline", "convex_auth {\nadmin_api s3cret\n}", "admin_api takes a block"},
		{"admin_api unknown option", "convex_auth {\nadmin_api {\nsecret x\ntoken y\n}\n}", `unknown admin_api option "token"`},
		{"passkey user_verification", "convex_auth {\nprovider passkey {\nuser_verification always\n}\n}", `user_verification "always" is unknown`},
		{"passkey attachment", "convex_auth {\nprovider passkey {\nattachment usb\n}\n}", `attachment "usb" is unknown`},
		{"passkey origin", "convex_auth {\nprovider passkey {\norigins example.com\n}\n}", `origin "example.com" is not an origin`},
		{"passkey unknown option", "convex_auth {\nprovider passkey {\nrp_id x\n}\n}", `unknown option "rp_id" for provider passkey`},
		{"second_factor mode", "convex_auth {\nsecond_factor sometimes\n}", `second_factor "sometimes" is unknown`},
		{"second_factor key", "convex_auth {\nsecond_factor {\nkey vault x\n}\n}", "second_factor key needs `file <path>` or `env <VARIABLE>`"},
		{"second_factor previous alone", "convex_auth {\nsecond_factor {\nprevious_key file /x\n}\n}", "previous_key needs key"},
		{"second_factor remember", "convex_auth {\nsecond_factor {\nremember_device 800h\n}\n}", "remember_device 800h0m0s is out of range"},
		{"second_factor off remember", "convex_auth {\nsecond_factor off {\nremember_device 1h\n}\n}", "remember_device needs a second factor"},
		{"second_factor unknown option", "convex_auth {\nsecond_factor {\ncodes 5\n}\n}", `unknown option "codes" in second_factor`},
		{"admin_api repeated secret", "convex_auth {\nadmin_api {\nsecret x\nsecret y\n}\n}", "admin_api secret is set more than once"},
		{"admin_api without secret", "convex_auth {\nadmin_api {\n}\n}", "admin_api needs a secret"},
		{"admin_api secret arity", "convex_auth {\nadmin_api {\nsecret a b\n}\n}", "secret takes one value"},
		{"repeated admin_api", "convex_auth {\nadmin_api {\nsecret x\n}\nadmin_api {\nsecret y\n}\n}", "admin_api is set more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestValidateNamesOption checks that each bad option fails config checks
// with its name in the message, as `caddy validate` shows it.
func TestValidateNamesOption(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"missing issuer", Handler{}, "issuer is required"},
		{"issuer not a URL", Handler{Issuer: "app.example.com"}, `issuer "app.example.com" is not an http(s) URL`},
		{"issuer other scheme", Handler{Issuer: "ftp://app.example.com"}, "issuer"},
		{"issuer with query", Handler{Issuer: "https://app.example.com/?x=1"}, "issuer"},
		{"short token_ttl", Handler{Issuer: "https://a.example", TokenTTL: caddy.Duration(10 * time.Second)}, "token_ttl 10s is under the 30s minimum"},
		{"bad algorithm", Handler{Issuer: "https://a.example", Algorithm: "HS256"}, "algorithm"},
		{"bad subject", Handler{Issuer: "https://a.example", Subject: "email"}, `subject "email" is unknown`},
		{"token_reuse too long", Handler{Issuer: "https://a.example", TokenReuse: caddy.Duration(10 * time.Second)}, "token_reuse 10s is out of range"},
		{"token_reuse_margin too short", Handler{Issuer: "https://a.example", TokenReuseMargin: caddy.Duration(time.Second)}, "token_reuse_margin 1s is under"},
		{"max_sessions_per_user negative", Handler{Issuer: "https://a.example", MaxSessionsPerUser: -1}, "max_sessions_per_user -1 is out of range"},
		{"max_sessions_per_user too large", Handler{Issuer: "https://a.example", MaxSessionsPerUser: 20000}, "max_sessions_per_user 20000 is out of range"},
		{"token_reuse_margin over token_ttl", Handler{Issuer: "https://a.example", TokenReuseMargin: caddy.Duration(10 * time.Minute)}, "token_reuse_margin 10m0s is longer than token_ttl 5m0s"},
		{"sign_in_url", Handler{Issuer: "https://a.example", SignInURL: "//evil.example"}, "sign_in_url"},
		{"after_sign_out", Handler{Issuer: "https://a.example", AfterSignOut: "javascript:alert(1)"}, "after_sign_out"},
		{"inject header", Handler{Issuer: "https://a.example", InjectHeader: "X Token"}, "inject header"},
		{"inject cookie", Handler{Issuer: "https://a.example", InjectCookie: "a;b"}, "inject cookie"},
		{"cookie same_site", Handler{Issuer: "https://a.example", Cookie: &CookieConfig{SameSite: "loose"}}, "cookie same_site"},
		{"cookie __Host- with domain", Handler{Issuer: "https://a.example", Cookie: &CookieConfig{Name: "__Host-s", Domain: "a.example"}}, "__Host- prefix"},
		{"realm with a control character", Handler{Issuer: "https://a.example", Realm: "users\n"}, "realm"},
		{"realm too long", Handler{Issuer: "https://a.example", Realm: strings.Repeat("r", 257)}, "realm is 257 bytes"},
		{"signing_key incomplete", Handler{Issuer: "https://a.example", SigningKey: &SigningKeySource{From: "file"}}, "signing_key"},
		{"admin_api secret short", Handler{Issuer: "https://a.example", AdminAPI: &AdminAPIConfig{Secret: strings.Repeat("s", 31)}}, "admin_api secret is 31 bytes, it must be at least 32"},
		{"admin_api secret from an unset variable", Handler{Issuer: "https://a.example", AdminAPI: &AdminAPIConfig{Secret: "{env.CONVEX_AUTH_TEST_UNSET_SECRET}"}}, "admin_api secret is 0 bytes"},
		{"admin_api without secret", Handler{Issuer: "https://a.example", AdminAPI: &AdminAPIConfig{}}, "admin_api needs a secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	ok := Handler{Issuer: "https://app.example.com"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
}
