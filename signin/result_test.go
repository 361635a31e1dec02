package signin

import (
	"net/http"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/mail"
)

// OnResult hears once from each request that finishes a sign-in, and from
// no other.
func TestOnResultPassword(t *testing.T) {
	e := newPasswordEnv(t)
	b := newBrowser(t)
	b.Get(e.origin + "/auth/signin")
	b.Get(e.origin + "/auth/signin/password")
	if got := e.results.take(); got != "" {
		t.Fatalf("the page and a GET of the form's action reported %q; want nothing", got)
	}
	b.Post(e.origin+"/auth/signin/password", passwordForm("signup", "ada@example.com", "correct horse", ""))
	newBrowser(t).Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "wrong horse", ""))
	newBrowser(t).Post(e.origin+"/auth/signin/password", passwordForm("signin", "ada@example.com", "correct horse", ""))
	if got := e.results.take(); got != "password:true password:false password:true" {
		t.Fatalf("sign-up, wrong and right password reported %q", got)
	}
	req, _ := http.NewRequest(http.MethodPost, e.origin+"/auth/signin/password", nil)
	req.Header.Set("Origin", "https://evil.example")
	b.Do(req)
	if got := e.results.take(); got != "password:false" {
		t.Fatalf("a cross-site post reported %q; want one failure", got)
	}
}

func TestOnResultEmail(t *testing.T) {
	rcv := startSMTP(t, nil, "", "")
	e := newEmailEnv(t, rcv, &mail.SMTPMailer{Security: mail.SMTPNone})
	b := newBrowser(t)
	requestLink(t, e, b, "ada@example.com", "")
	link := mailLink(t, rcv)
	b.Get(link)
	if got := e.results.take(); got != "" {
		t.Fatalf("sending and opening the link reported %q; want nothing", got)
	}
	useLink(t, b, link)
	useLink(t, newBrowser(t), link)
	if got := e.results.take(); got != "email:true email:false" {
		t.Fatalf("using the link twice reported %q", got)
	}
}

func TestOnResultOAuth(t *testing.T) {
	oe := newOAuthEnv(t, false)
	b := newBrowser(t)
	oe.signIn(b, "zitadel", "")
	if got := oe.results.take(); got != "zitadel:true" {
		t.Fatalf("a flow reported %q; want one success", got)
	}
	b2 := newBrowser(t)
	oe.expectFailure(b2, forgeState(oe.op.SignIn(b2, oe.start(b2, "zitadel", ""))), "state")
	b2.Get(oe.origin + "/auth/callback/nobody?code=x&state=y")
	if got := oe.results.take(); got != "zitadel:false" {
		t.Fatalf("a forged state and an unknown provider reported %q; want one failure", got)
	}
}
