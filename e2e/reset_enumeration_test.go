package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/smtptest"
)

// TestPasswordResetDoesNotTellAccountsApart: against the built binary, a
// reset request for an address with an account and one for an address
// without get the same status and the same page (the address aside); only
// the first gets a mail, and it goes out after the answer.
func TestPasswordResetDoesNotTellAccountsApart(t *testing.T) {
	caddyBin(t)
	sink := smtptest.Start(t, nil, "", "")
	smtpHost, smtpPort, _ := net.SplitHostPort(sink.Addr)
	port := freePort(t)
	origin := fmt.Sprintf("http://localhost:%d", port)
	startCaddy(t, fmt.Sprintf(`{
	admin off
	http_port %d
}
%s {
	convex_auth {
		issuer %s
		email {
			smtp_host %s
			smtp_port %s
			smtp_tls none
			from "Example <login@example.com>"
		}
		provider password {
			verify_email off
		}
	}
	respond "app page"
}
`, port, origin, origin, smtpHost, smtpPort), t.TempDir(), origin+"/.well-known/jwks.json")

	const known, unknown = "known@example.com", "unknown@example.com"
	resp, _ := postForm(t, origin+"/auth/signin/password", url.Values{
		"intent": {"signup"}, "email": {known}, "password": {"correct horse battery"},
	}, map[string]string{"Origin": origin})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", resp.StatusCode)
	}
	forgot := func(email string) (int, string) {
		resp, page := postForm(t, origin+"/auth/password/forgot", url.Values{"email": {email}}, map[string]string{"Origin": origin})
		return resp.StatusCode, strings.ReplaceAll(page, email, "ADDRESS")
	}
	before := sink.Count()
	knownStatus, knownPage := forgot(known)
	unknownStatus, unknownPage := forgot(unknown)
	if knownStatus != http.StatusOK || unknownStatus != knownStatus || unknownPage != knownPage {
		t.Fatalf("reset answers differ: %d and %d; pages equal: %v", knownStatus, unknownStatus, unknownPage == knownPage)
	}
	deadline := time.Now().Add(eventually)
	for sink.Count() < before+1 {
		if time.Now().After(deadline) {
			t.Fatal("no reset mail reached the address with an account")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := sink.Count() - before; n != 1 {
		t.Fatalf("%d reset mails; want 1, to the address with an account", n)
	}
	if to := sink.Last(t).To; len(to) != 1 || to[0] != known {
		t.Fatalf("the reset mail went to %v", to)
	}
}
