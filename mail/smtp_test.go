package mail

import "testing"

func TestSMTPMailerValidate(t *testing.T) {
	good := SMTPMailer{Host: "smtp.example.com", From: "Example <login@example.com>"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]SMTPMailer{
		"no host":       {From: "a@example.com"},
		"no from":       {Host: "h"},
		"bad from":      {Host: "h", From: "not an address"},
		"from newline":  {Host: "h", From: "a@example.com\r\nBcc: b@example.com"},
		"bad security":  {Host: "h", From: "a@example.com", Security: "ssl"},
		"half the auth": {Host: "h", From: "a@example.com", Username: "u"},
	} {
		if err := m.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}
