package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/convex-auth/caddy-convex-auth/authz"
)

// TestProtectJSONLoadsBothForms: the list of path strings protect had
// before rules still loads, and writes back as it was.
func TestProtectJSONLoadsBothForms(t *testing.T) {
	old := `{"issuer":"https://app.example.com","protect":["/loggedin*","/account*"]}`
	var h Handler
	if err := json.Unmarshal([]byte(old), &h); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(protectPaths(h.Protect), " "); got != "/loggedin* /account*" {
		t.Fatalf("paths %q", got)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(struct {
		Protect []ProtectRule `json:"protect"`
	}{h.Protect})
	if string(out) != `{"protect":["/loggedin*","/account*"]}` {
		t.Fatalf("written back as %s", out)
	}

	mixed := `{"issuer":"https://app.example.com","claims":{"convex_url":"https://x.convex.cloud","query":"auth:claims"},
		"protect":["/loggedin*",{"paths":["/admin*"],"allow":[{"kind":"claim","claim":"role","values":["admin"]}],"max_age":600000000000}]}`
	h = Handler{}
	if err := json.Unmarshal([]byte(mixed), &h); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if r := h.Protect[1]; r.Paths[0] != "/admin*" || r.Allow[0].Claim != "role" || time.Duration(r.MaxAge) != 10*time.Minute {
		t.Fatalf("the rule %+v", r)
	}
}

func TestProtectJSONRefusesWhatItDoesNotKnow(t *testing.T) {
	var h Handler
	err := json.Unmarshal([]byte(`{"protect":[{"paths":["/a*"],"allow_if":[]}]}`), &h)
	if err == nil || !strings.Contains(err.Error(), "allow_if") {
		t.Fatalf("an unknown field: %v", err)
	}
}

func TestValidateNamesAuthorizationOptions(t *testing.T) {
	claims := &ClaimsConfig{ConvexURL: "https://x.convex.cloud", Query: "auth:claims"}
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"unknown criterion", Handler{Protect: []ProtectRule{{Paths: []string{"/a*"}, Allow: []authz.Criterion{{Kind: "group", Values: []string{"x"}}}}}}, `protect /a*: allow: unknown criterion "group"`},
		{"claim without a claims block", Handler{Protect: []ProtectRule{{Paths: []string{"/admin*"}, Allow: []authz.Criterion{{Kind: "claim", Claim: "role", Values: []string{"admin"}}}}}}, "protect /admin* reads claims (claim …), but there is no claims block"},
		{"a path protected twice", Handler{Protect: []ProtectRule{{Paths: []string{"/a*"}}, {Paths: []string{"/A*"}}}}, "protected twice"},
		{"a path without /", Handler{Protect: []ProtectRule{{Paths: []string{"admin*"}}}}, "must start with /"},
		{"claims without query", Handler{Claims: &ClaimsConfig{ConvexURL: "https://x.convex.cloud"}}, "claims: query is required"},
		{"claims without URL", Handler{Claims: &ClaimsConfig{Query: "auth:claims"}}, "claims: convex_url is required"},
		{"claims bad context key", Handler{Claims: &ClaimsConfig{ConvexURL: "https://x.convex.cloud", Query: "a:b", Context: []string{"org-id"}}}, `context key "org-id"`},
		{"claims short ttl", Handler{Claims: &ClaimsConfig{ConvexURL: "https://x.convex.cloud", Query: "a:b", TTL: caddy.Duration(time.Millisecond)}}, "ttl 1ms is under a second"},
		{"token_claims", Handler{TokenClaims: []string{"email", "role"}}, `token_claims "role" is not a profile claim`},
		{"a claim rule with claims is fine", Handler{Claims: claims, Protect: []ProtectRule{{Paths: []string{"/admin*"}, Allow: []authz.Criterion{{Kind: "claim", Claim: "role", Values: []string{"admin"}}}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.h.Issuer = "https://app.example.com"
			err := tt.h.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestUnmarshalProtectAndClaims(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`convex_auth {
		issuer https://app.example.com
		protect /loggedin*
		protect /admin* /ops* {
			allow claim role admin owner
			allow email_verified
			deny provider guest
			max_age 10m
			mfa
		}
		claims {
			convex_url {env.CONVEX_URL}
			query auth:claims
			context org team
		}
		token_claims none
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Protect) != 2 || !h.Protect[0].plain() {
		t.Fatalf("protect %+v", h.Protect)
	}
	r := h.Protect[1]
	if strings.Join(r.Paths, " ") != "/admin* /ops*" || len(r.Allow) != 2 || r.Allow[0].Claim != "role" || len(r.Allow[0].Values) != 2 ||
		r.Allow[1].Kind != "email_verified" || r.Deny[0].Kind != "provider" || time.Duration(r.MaxAge) != 10*time.Minute || !r.MFA {
		t.Fatalf("the block %+v", r)
	}
	if h.Claims.ConvexURL != "{env.CONVEX_URL}" || h.Claims.Query != "auth:claims" || strings.Join(h.Claims.Context, " ") != "org team" {
		t.Fatalf("claims %+v", h.Claims)
	}
	if strings.Join(h.TokenClaims, " ") != "none" {
		t.Fatalf("token_claims %v", h.TokenClaims)
	}
}

func TestUnmarshalProtectAndClaimsErrors(t *testing.T) {
	for _, tt := range []struct{ name, input, wantErr string }{
		{"unknown line", "convex_auth {\nprotect /a* {\nallow_if claim role admin\n}\n}", `protect /a*: unknown line "allow_if"`},
		{"unknown criterion", "convex_auth {\nprotect /a* {\nallow group admins\n}\n}", `protect /a*: allow: unknown criterion "group"`},
		{"criterion without value", "convex_auth {\nprotect /a* {\ndeny email\n}\n}", "protect /a*: deny: email needs at least one value"},
		{"max_age twice", "convex_auth {\nprotect /a* {\nmax_age 1m\nmax_age 2m\n}\n}", "max_age is set more than once"},
		{"max_age not a duration", "convex_auth {\nprotect /a* {\nmax_age soon\n}\n}", `max_age "soon" is not a duration`},
		{"mfa with a value", "convex_auth {\nprotect /a* {\nmfa yes\n}\n}", "mfa takes no value"},
		{"claims inline", "convex_auth {\nclaims https://x.convex.cloud\n}", "claims takes a block"},
		{"claims unknown line", "convex_auth {\nclaims {\nurl x\n}\n}", `claims: unknown line "url"`},
		{"claims repeated line", "convex_auth {\nclaims {\nquery a:b\nquery c:d\n}\n}", "claims: query is set more than once"},
		{"claims twice", "convex_auth {\nclaims {\nquery a:b\n}\nclaims {\nquery c:d\n}\n}", "claims is set more than once"},
		{"token_claims empty", "convex_auth {\ntoken_claims\n}", "token_claims needs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// protectPaths lists the path patterns of entries, in order.
func protectPaths(entries []ProtectRule) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Paths...)
	}
	return out
}
