package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProviderStepUpNeedsAFreshSignIn: re-authenticating through an
// OpenID provider counts only when the provider signed the user in again.
// The attack is a provider that ignores prompt=login and max_age: it
// answers at once with an old auth_time, and the session must not become
// recent. A fresh sign-in at the provider re-authenticates the same
// session (same sid, newer auth_time).
func TestProviderStepUpNeedsAFreshSignIn(t *testing.T) {
	s := startSite(t, siteOptions{idp: true})
	c := newJarClient(t)
	if resp := s.signInWithIdP(t, c, "owner"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the IdP's sign-in: %d", resp.StatusCode)
	}
	before := s.tokenClaims(t, c)
	if before.SessionID == "" || before.AuthTime == 0 {
		t.Fatalf("the token names no session or auth_time: %+v", before)
	}
	_, page := get(t, c, s.origin+"/auth/reauth?redirectTo=%2Fbilling")
	if !strings.Contains(page, `/auth/reauth/provider/idp?redirectTo=%2Fbilling`) {
		t.Fatalf("the step-up page offers no IdP re-authentication: %.400s", page)
	}
	stepUp := func() (*http.Response, string) {
		t.Helper()
		resp, _ := get(t, c, s.origin+"/auth/reauth/provider/idp?redirectTo=%2Fbilling")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(location(t, resp), s.idp.issuer) {
			t.Fatalf("re-authentication start: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		authURL := mustParse(t, location(t, resp))
		if q := authURL.Query(); q.Get("prompt") != "login" || q.Get("max_age") != "0" {
			t.Fatalf("the IdP is not asked for a new sign-in: %s", authURL.RawQuery)
		}
		return get(t, c, s.idp.login(t, c, authURL.String(), "owner"))
	}

	// Whole seconds: a re-authentication in the sign-in's second would
	// not show as newer.
	time.Sleep(time.Until(time.Unix(before.AuthTime+1, 0)))
	s.idp.stale.Store(true)
	resp, page := stepUp()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "did not ask you to sign in again") {
		t.Fatalf("a stale auth_time: %d; want 403 saying the provider did not ask again", resp.StatusCode)
	}
	if after := s.tokenClaims(t, c); after.SessionID != before.SessionID || after.AuthTime != before.AuthTime {
		t.Fatalf("a stale auth_time moved the session: %+v; before %+v", after, before)
	}

	s.idp.stale.Store(false)
	began := time.Now().Unix()
	resp, _ = stepUp()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/billing" {
		t.Fatalf("a fresh sign-in at the IdP: %d %s; want 303 to /billing", resp.StatusCode, resp.Header.Get("Location"))
	}
	after := s.tokenClaims(t, c)
	if after.SessionID != before.SessionID || after.AuthTime < began {
		t.Fatalf("after re-authenticating: sid %s auth_time %d; want sid %s and auth_time ≥ %d", after.SessionID, after.AuthTime, before.SessionID, began)
	}
	if id, _ := s.whoIs(t, c); id == "" {
		t.Fatal("signed out by re-authenticating")
	}
}
