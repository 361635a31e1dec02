package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

const mailBlock = "email {\nsmtp_host smtp.example.com\nfrom login@example.com\n}\n"

// TestMailCaddyfileErrors: every bad email block or mail option is refused,
// at parse time or by the config check, naming the option at fault.
func TestMailCaddyfileErrors(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"unknown option", "email {\nsmtp_host h\nfrom a@example.com\nsmtp_server x\n}", `unknown option "smtp_server" in email`},
		{"repeated option", "email {\nsmtp_host h\nfrom a@example.com\nfrom b@example.com\n}", "email: from is set more than once"},
		{"inline value", "email smtp.example.com", "email takes a block"},
		{"twice", mailBlock + mailBlock + "provider password", "email is set more than once"},
		{"without from", "email {\nsmtp_host h\n}", "email: email needs smtp_host and from"},
		{"bad from", "email {\nsmtp_host h\nfrom nobody\n}", `email: from "nobody" is not an email address`},
		{"bad tls", "email {\nsmtp_host h\nfrom a@example.com\nsmtp_tls ssl\n}", `email: smtp_tls "ssl" is unknown`},
		{"bad max_sends", "email {\nsmtp_host h\nfrom a@example.com\nmax_sends 0\n}", "max_sends must be at least 1"},
		{"missing templates", "email {\nsmtp_host h\nfrom a@example.com\ntemplates /nonexistent/mail\n}", "templates"},
		{"unknown verify_email", mailBlock + "provider password {\nverify_email sometimes\n}", `verify_email "sometimes" is unknown`},
		{"repeated verify_email", mailBlock + "provider password {\nverify_email off\nverify_email required\n}", "verify_email is set more than once"},
		{"short reset_ttl", mailBlock + "provider password {\nreset_ttl 10s\n}", "reset_ttl 10s is out of range"},
		{"long verify_ttl", mailBlock + "provider password {\nverify_ttl 200h\n}", "verify_ttl 200h0m0s is out of range"},
		{"unknown mode", mailBlock + "provider email {\nmode pigeon\n}", `mode "pigeon" is unknown`},
		{"site_name on the provider", mailBlock + "provider email {\nsite_name x\n}", `unknown option "site_name" for provider email`},
		{"mode on password", "provider password {\nmode code\n}", `unknown option "mode" for provider password`},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\n" + c.body + "\n}"))
		if err == nil {
			err = h.checkSignIn()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestMailCrossChecks are the checks across the email block and providers.
func TestMailCrossChecks(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"verification without mail", "provider password {\nverify_email required\n}", "verify_email required needs mail"},
		{"email provider without mail", "provider email", "email needs smtp_host and from"},
		{"mail twice", mailBlock + "provider email {\nsmtp_host h\nfrom a@example.com\n}", "keep the email block"},
		{"mail without providers", mailBlock, "need at least one provider"},
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\n" + c.body + "\n}")); err != nil {
			t.Fatalf("%s: parse: %v", c.name, err)
		}
		if err := h.checkSignIn(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error containing %q", c.name, err, c.want)
		}
	}
	for name, body := range map[string]string{
		"password alone":       "provider password",
		"the older email form": "provider email {\nsmtp_host h\nfrom a@example.com\n}\nprovider password {\nverify_email required\n}",
		"the email block":      mailBlock + "provider email {\nmode code\n}\nprovider password {\nverify_email optional\n}",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("convex_auth {\nissuer https://app.example.com\n" + body + "\n}")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := h.checkSignIn(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
