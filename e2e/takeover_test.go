package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// The account-takeover cases, each against the built binary: an attacker
// with a browser of his own, the victim's browser and mail, and an OpenID
// Provider where the attacker has accounts (takeover_site_test.go).

const (
	victim         = "victim@example.com"
	victimPassword = "victim's own password"
)

// TestLoggedLinkSignsNobodyIn: the attacker asks for a sign-in link, a
// password reset and a sign-up for the victim's address; the victim's mail
// scanner opens each link (GET, HEAD or a POST without the code), so the
// token is in the access log; the attacker's browser, the one that asked,
// posts the token without the code. None signs him in, replaces the
// password or verifies the address for him.
func TestLoggedLinkSignsNobodyIn(t *testing.T) {
	s := startSite(t, siteOptions{verifyEmail: "required", emailLinks: true})
	s.signUp(t, newJarClient(t), victim, victimPassword, true)

	t.Run("sign-in link opened by GET", func(t *testing.T) {
		attacker, scanner := newJarClient(t), newJarClient(t)
		before := s.sink.Count()
		if resp, _ := formPost(t, attacker, s.origin+"/auth/signin/email", url.Values{"email": {victim}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("asking for the victim's link: %d", resp.StatusCode)
		}
		m := s.mailTo(t, before, victim, "/auth/callback/email?token=")
		get(t, scanner, m.link)
		resp, _ := formPost(t, attacker, s.origin+"/auth/callback/email", url.Values{"token": {tokenOf(t, m.link)}})
		if _, email := s.whoIs(t, attacker); email != "" {
			t.Fatalf("the attacker posted the scanned link's token (%d) and is signed in as %s", resp.StatusCode, email)
		}
	})

	t.Run("reset link opened by HEAD", func(t *testing.T) {
		attacker, scanner := newJarClient(t), newJarClient(t)
		before := s.sink.Count()
		if resp, _ := formPost(t, attacker, s.origin+"/auth/password/forgot", url.Values{"email": {victim}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("asking for the victim's reset: %d", resp.StatusCode)
		}
		m := s.mailTo(t, before, victim, "/auth/password/reset?token=")
		if resp, err := scanner.Head(m.link); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
		}
		const chosen = "the attacker's choice"
		resp, _ := formPost(t, attacker, s.origin+"/auth/password/reset", url.Values{"token": {tokenOf(t, m.link)}, "password": {chosen}, "confirm": {chosen}})
		if _, email := s.whoIs(t, attacker); email != "" {
			t.Fatalf("the attacker posted the scanned reset token (%d) and is signed in as %s", resp.StatusCode, email)
		}
		if got := s.signIn(t, newJarClient(t), victim, chosen); got == http.StatusSeeOther {
			t.Fatal("the attacker's password replaced the victim's")
		}
		if got := s.signIn(t, newJarClient(t), victim, victimPassword); got != http.StatusSeeOther {
			t.Fatalf("the victim's own password: %d; want 303", got)
		}
	})

	t.Run("sign-up link posted without its code", func(t *testing.T) {
		const other = "other-victim@example.com"
		const attackers = "the attacker's password"
		attacker, scanner := newJarClient(t), newJarClient(t)
		before := s.sink.Count()
		if resp, _ := formPost(t, attacker, s.origin+"/auth/signin/password", url.Values{"intent": {"signup"}, "email": {other}, "password": {attackers}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("the attacker's sign-up with the victim's address: %d", resp.StatusCode)
		}
		m := s.mailTo(t, before, other, "/auth/verify?token=")
		token := tokenOf(t, m.link)
		formPost(t, scanner, s.origin+"/auth/verify", url.Values{"token": {token}})
		resp, _ := formPost(t, attacker, s.origin+"/auth/verify", url.Values{"token": {token}})
		if _, email := s.whoIs(t, attacker); email != "" {
			t.Fatalf("the attacker posted the scanned sign-up token (%d) and is signed in as %s, verified", resp.StatusCode, email)
		}
		if got := s.signIn(t, newJarClient(t), other, attackers); got == http.StatusSeeOther {
			t.Fatal("the attacker's sign-up with the victim's address was completed")
		}
	})
}

// TestPreHijackedAccountStaysTheOwners: the attacker signs up with the
// victim's address and a password (verify_email optional) and links his own
// OIDC account; the victim, told the account exists, resets the password
// and uses the account. The attacker's OIDC sign-in must not land in it.
func TestPreHijackedAccountStaysTheOwners(t *testing.T) {
	s := startSite(t, siteOptions{idp: true})
	attacker := newJarClient(t)
	s.signUp(t, attacker, victim, "the attacker's password", false)
	status, where := s.linkIdP(t, attacker, "attacker", nil)
	t.Logf("the attacker's link of his OIDC account to the unverified account: %d %s", status, where)

	owner := newJarClient(t)
	if resp, body := formPost(t, owner, s.origin+"/auth/signin/password", url.Values{"intent": {"signup"}, "email": {victim}, "password": {victimPassword}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("the owner's sign-up: %d; want 409, account exists: %s", resp.StatusCode, body)
	}
	before := s.sink.Count()
	formPost(t, owner, s.origin+"/auth/password/forgot", url.Values{"email": {victim}})
	m := s.mailTo(t, before, victim, "/auth/password/reset?token=")
	if resp, body := formPost(t, owner, s.origin+"/auth/password/reset", url.Values{"token": {tokenOf(t, m.link)}, "password": {victimPassword}, "confirm": {victimPassword}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the owner's reset: %d %s", resp.StatusCode, body)
	}
	ownerID, _ := s.whoIs(t, owner)

	later := newJarClient(t)
	resp := s.signInWithIdP(t, later, "attacker")
	if id, _ := s.whoIs(t, later); id == ownerID {
		t.Fatalf("after the owner's reset, the attacker's OIDC sign-in (%d) is in her account %s", resp.StatusCode, ownerID)
	}
	// An IdP account with her address that the IdP has not verified does
	// not get in either.
	other := newJarClient(t)
	s.signInWithIdP(t, other, "attacker-unverified")
	if id, _ := s.whoIs(t, other); id == ownerID {
		t.Fatal("an OIDC sign-in with her address, unverified at the IdP, is in her account")
	}
}

// TestSignInMethodsNeedRecentSignIn: a session cookie alone, of a sign-in
// ten minutes old (a stolen cookie), neither links another OIDC account
// nor unlinks the password; a fresh sign-in does both, and each change is
// mailed to the owner.
func TestSignInMethodsNeedRecentSignIn(t *testing.T) {
	s := startSite(t, siteOptions{idp: true, redis: true})
	const owner = "owner@example.com"
	browser := newJarClient(t)
	before := s.sink.Count()
	s.signUp(t, browser, owner, victimPassword, false)
	m := s.mailTo(t, before, owner, "/auth/verify?token=")
	if resp, body := formPost(t, browser, s.origin+"/auth/verify", url.Values{"token": {tokenOf(t, m.link)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("verifying the address: %d %s", resp.StatusCode, body)
	}
	ownerID, _ := s.whoIs(t, browser)

	// The intruder's cookie: a session of hers signed in ten minutes ago,
	// written to Redis as the gateway writes it.
	realm := session.DefaultRealm(s.issuer, "convex")
	store, err := session.NewRedisStore(session.RedisConfig{URL: s.redis.URL(), CacheSize: -1},
		session.Options{Realm: realm, Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	token, _, err := store.Create(context.Background(), session.NewSession{UserID: ownerID, Provider: "password",
		Profile: session.Profile{Email: owner, EmailVerified: true}})
	if err != nil {
		t.Fatal(err)
	}
	intruder := newJarClient(t)
	intruder.Jar.SetCookies(mustParse(t, s.origin), []*http.Cookie{{Name: edge.DefaultCookieNameFor(realm, false), Value: token, Path: "/"}})
	if id, _ := s.whoIs(t, intruder); id != ownerID {
		t.Fatalf("the old session is not the owner's: %q", id)
	}
	status, where := s.linkIdP(t, intruder, "attacker", nil)
	unlink, _ := formPost(t, intruder, s.origin+"/auth/account/unlink", url.Values{"provider": {"password"}, "account": {owner}})
	if id, _ := s.whoIsAfterIdP(t, "attacker"); id == ownerID {
		t.Fatalf("a ten-minute-old session linked the intruder's OIDC account (%d %s)", status, where)
	}
	if got := s.signIn(t, newJarClient(t), owner, victimPassword); got != http.StatusSeeOther {
		t.Fatalf("a ten-minute-old session unlinked the password (%d): the owner's password now gets %d", unlink.StatusCode, got)
	}

	// Signed in just now, the owner links and unlinks, and is told each time.
	fresh := newJarClient(t)
	if got := s.signIn(t, fresh, owner, victimPassword); got != http.StatusSeeOther {
		t.Fatalf("the owner's sign-in: %d", got)
	}
	before = s.sink.Count()
	if status, where := s.linkIdP(t, fresh, "owner", nil); status != http.StatusSeeOther || !strings.Contains(where, "notice=linked") {
		t.Fatalf("linking from a fresh sign-in: %d %s", status, where)
	}
	s.mailTo(t, before, owner, "was added to your account")
	before = s.sink.Count()
	if resp, _ := formPost(t, fresh, s.origin+"/auth/account/unlink", url.Values{"provider": {"idp"}, "account": {"owner"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unlinking from a fresh sign-in: %d", resp.StatusCode)
	}
	s.mailTo(t, before, owner, "was removed from your account")
}

// whoIsAfterIdP signs a new browser in at the IdP as user and says who it
// is then.
func (s *site) whoIsAfterIdP(t *testing.T, user string) (string, string) {
	t.Helper()
	c := newJarClient(t)
	s.signInWithIdP(t, c, user)
	return s.whoIs(t, c)
}

// TestGuestNotAdoptedByAnotherBrowsersLink: a guest types the code of a
// link the attacker asked for his own new address; her guest user must not
// become his account.
func TestGuestNotAdoptedByAnotherBrowsersLink(t *testing.T) {
	s := startSite(t, siteOptions{emailLinks: true, guests: true})
	guest := newJarClient(t)
	if resp, _ := formPost(t, guest, s.origin+"/auth/signin/anonymous", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("continuing as a guest: %d", resp.StatusCode)
	}
	guestID, _ := s.whoIs(t, guest)

	attacker := newJarClient(t)
	const own = "attacker@evil.test"
	before := s.sink.Count()
	formPost(t, attacker, s.origin+"/auth/signin/email", url.Values{"email": {own}})
	m := s.mailTo(t, before, own, "/auth/callback/email?token=")
	// The guest opens the attacker's link and types the code he gave her.
	get(t, guest, m.link)
	formPost(t, guest, s.origin+"/auth/callback/email", url.Values{"token": {tokenOf(t, m.link)}, "code": {m.code}})

	before = s.sink.Count()
	formPost(t, attacker, s.origin+"/auth/signin/email", url.Values{"email": {own}})
	m = s.mailTo(t, before, own, "/auth/callback/email?token=")
	if resp, body := formPost(t, attacker, s.origin+"/auth/callback/email", url.Values{"token": {tokenOf(t, m.link)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the attacker's own sign-in: %d %s", resp.StatusCode, body)
	}
	if id, _ := s.whoIs(t, attacker); id == guestID {
		t.Fatalf("the attacker's account is the guest's user %s: her guest was adopted through his code", guestID)
	}
}

// TestSessionsPerUserAreCapped: 60 sign-ins of one user leave at most 50
// live sessions (max_sessions_per_user's default); the least recently used
// ended, and the session list shows at most the cap.
func TestSessionsPerUserAreCapped(t *testing.T) {
	s := startSite(t, siteOptions{upstream: true, redis: true})
	const signIns, limit = 60, 50
	cookies := make([]*http.Cookie, 0, signIns)
	for i := range signIns {
		resp, _ := request(t, "POST", s.origin+"/signin?user=user_many", map[string]string{"Sec-Fetch-Site": "same-origin"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in %d: %d", i, resp.StatusCode)
		}
		cookies = append(cookies, sessionCookie(t, resp))
	}
	resp, body := request(t, "GET", s.origin+"/auth/sessions", withCookie(cookies[signIns-1], map[string]string{"Sec-Fetch-Site": "same-origin"}))
	var list struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("/auth/sessions: %d %s", resp.StatusCode, body)
	}
	if len(list.Sessions) != limit {
		t.Fatalf("%d sign-ins of one user left %d sessions listed; want %d", signIns, len(list.Sessions), limit)
	}
	// The least recently used ended: sessions made in the same
	// millisecond are equally recent, so the test spares the boundary.
	live := 0
	for i, c := range cookies {
		resp, _ := request(t, "GET", s.origin+"/auth/session", withCookie(c))
		ok := resp.StatusCode == http.StatusOK
		if ok {
			live++
		}
		switch {
		case ok && i < signIns-limit-5:
			t.Fatalf("session %d of %d, among the least recently used, is still live", i+1, signIns)
		case !ok && i >= signIns-limit+5:
			t.Fatalf("session %d of %d, among the most recent, ended: %d", i+1, signIns, resp.StatusCode)
		}
	}
	if live != limit {
		t.Fatalf("%d sessions live; want %d", live, limit)
	}
}

// TestSignUpDoesNotTellAccountsApart: under verify_email required, a
// sign-up with an address that has an account and one with a new address
// get the same status and page; the owner of the first is told by mail.
func TestSignUpDoesNotTellAccountsApart(t *testing.T) {
	s := startSite(t, siteOptions{verifyEmail: "required"})
	const owner, fresh = "owner@example.com", "fresh@example.com"
	s.signUp(t, newJarClient(t), owner, victimPassword, true)
	signUp := func(email string) (int, string) {
		resp, page := formPost(t, newJarClient(t), s.origin+"/auth/signin/password", url.Values{"intent": {"signup"}, "email": {email}, "password": {"a new password here"}})
		page = strings.ReplaceAll(page, email, "ADDRESS")
		return resp.StatusCode, hiddenToken.ReplaceAllString(page, `name="token" value="TOKEN"`)
	}
	before := s.sink.Count()
	ownerStatus, ownerPage := signUp(owner)
	freshStatus, freshPage := signUp(fresh)
	if ownerStatus != freshStatus || ownerPage != freshPage {
		t.Fatalf("sign-up answers differ: %d for an existing account, %d for a new address; pages equal: %v", ownerStatus, freshStatus, ownerPage == freshPage)
	}
	s.mailTo(t, before, fresh, "/auth/verify?token=")
	s.mailTo(t, before, owner, "tried to sign up")
}

// hiddenToken is a page's hidden link token (the resend button's), random
// on every page.
var hiddenToken = regexp.MustCompile(`name="token" value="[A-Za-z0-9_-]*"`)

// TestOwnerNotLockedOut: wrong passwords from other clients (several
// addresses) do not lock the owner out: not the browser she signed in
// with before, and not a new browser of hers either.
func TestOwnerNotLockedOut(t *testing.T) {
	s := startSite(t, siteOptions{verifyEmail: "off", globals: "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"})
	const owner = "owner@example.com"
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	browser := newJarClient(t)
	resp, _ := formPost(t, browser, s.origin+"/auth/signin/password", url.Values{"intent": {"signup"}, "email": {owner}, "password": {victimPassword}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", resp.StatusCode)
	}
	formPost(t, browser, s.origin+"/auth/signout", nil)

	for i := range 16 {
		s.signIn(t, newJarClient(t), owner, "a wrong guess", from(fmt.Sprintf("203.0.113.%d", i%4+1)))
	}
	if got := s.signIn(t, browser, owner, victimPassword, from("198.51.100.7")); got != http.StatusSeeOther {
		t.Fatalf("after 16 wrong passwords from 4 other addresses, the owner's own browser: %d; want 303", got)
	}
	if got := s.signIn(t, newJarClient(t), owner, victimPassword, from("198.51.100.8")); got != http.StatusSeeOther {
		t.Fatalf("after 16 wrong passwords from 4 other addresses, a new browser of the owner's: %d; want 303", got)
	}
}

// TestGlobalSignInLimit: limits { global_sign_in } counts failed sign-ins
// site-wide; once spent, a browser an account does not know waits (429),
// while the owner's browser, which signed in before, signs in.
func TestGlobalSignInLimit(t *testing.T) {
	s := startSite(t, siteOptions{verifyEmail: "off", limits: "\t\t\tglobal_sign_in 5/h\n",
		globals: "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"})
	const owner = "owner@example.com"
	browser := newJarClient(t)
	if resp, _ := formPost(t, browser, s.origin+"/auth/signin/password", url.Values{"intent": {"signup"}, "email": {owner}, "password": {victimPassword}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", resp.StatusCode)
	}
	formPost(t, browser, s.origin+"/auth/signout", nil)
	for i := range 6 {
		s.signIn(t, newJarClient(t), fmt.Sprintf("someone%d@example.com", i), "a wrong guess", map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1)})
	}
	if got := s.signIn(t, newJarClient(t), owner, victimPassword, map[string]string{"X-Forwarded-For": "198.51.100.7"}); got != http.StatusTooManyRequests {
		t.Fatalf("a new browser once the site's failed sign-ins are spent: %d; want 429", got)
	}
	if got := s.signIn(t, browser, owner, victimPassword, map[string]string{"X-Forwarded-For": "198.51.100.7"}); got != http.StatusSeeOther {
		t.Fatalf("the owner's browser that signed in before: %d; want 303", got)
	}
}

// TestGatewayCookiesDoNotReachTheApp: the gateway's own cookies (link
// binding, flow, device, last-used hint), sent by the gateway or forged in
// any spelling, never reach the upstream.
func TestGatewayCookiesDoNotReachTheApp(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, strings.Join(r.Header.Values("Cookie"), " | "))
		mu.Unlock()
		_, _ = w.Write([]byte("app page"))
	})
	s := startSite(t, siteOptions{emailLinks: true, app: app})
	realmTag := strings.TrimPrefix(edge.DefaultCookieNameFor(session.DefaultRealm(s.issuer, "convex"), false), edge.DefaultCookieName)

	// A real link-binding cookie, set by asking for a link.
	browser := newJarClient(t)
	formPost(t, browser, s.origin+"/auth/signin/email", url.Values{"email": {"someone@example.com"}})
	if len(browser.Jar.Cookies(mustParse(t, s.origin))) == 0 {
		t.Fatal("asking for a link set no cookie")
	}
	get(t, browser, s.origin+"/page")

	var forged []string
	for _, base := range cookies.Internal {
		for _, name := range []string{base, base + realmTag, "__Host-" + base + realmTag, strings.ToUpper(base + realmTag), "%5F_Host-" + base + realmTag} {
			forged = append(forged, name+"=forged")
		}
	}
	request(t, "GET", s.origin+"/page", map[string]string{"Cookie": "app=kept; " + strings.Join(forged, "; ")})
	request(t, "GET", s.origin+"/page", map[string]string{"Cookie": "app=kept, " + strings.Join(forged, ", ")})

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("the app got %d requests; want 3", len(seen))
	}
	for i, cookies := range seen {
		if strings.Contains(strings.ToLower(cookies), "convex_auth_") || strings.Contains(cookies, "forged") {
			t.Errorf("request %d reached the app with the gateway's cookies: %q", i, cookies)
		}
		if i > 0 && !strings.Contains(cookies, "app=kept") {
			t.Errorf("request %d lost the app's own cookie: %q", i, cookies)
		}
	}
}

// TestAccessLogFilterDropsLinkTokens: the access log block that
// Caddyfile.example ships logs the link and callback requests without
// their token, code and state.
func TestAccessLogFilterDropsLinkTokens(t *testing.T) {
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	block := exampleLogBlock(t, string(raw))
	s := startSite(t, siteOptions{emailLinks: true, idp: true, site: block})
	c := newJarClient(t)
	before := s.sink.Count()
	formPost(t, c, s.origin+"/auth/signin/email", url.Values{"email": {"someone@example.com"}})
	m := s.mailTo(t, before, "someone@example.com", "/auth/callback/email?token=")
	token := tokenOf(t, m.link)
	get(t, newJarClient(t), m.link)
	resp, _ := get(t, c, s.origin+"/auth/signin/idp")
	state := mustParse(t, location(t, resp)).Query().Get("state")
	get(t, c, s.origin+"/auth/callback/idp?code=the-provider-code-123&state="+url.QueryEscape(state))

	var logged string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		logged = s.caddy.Log()
		if strings.Contains(logged, `"uri":"/auth/callback/email`) && strings.Contains(logged, `"uri":"/auth/callback/idp`) {
			break
		}
	}
	if !strings.Contains(logged, `"uri":"/auth/callback/email`) || !strings.Contains(logged, `"uri":"/auth/callback/idp`) {
		t.Fatalf("the access log lacks the link and callback requests; the test would prove nothing:\n%s", logged)
	}
	for name, secret := range map[string]string{"link token": token, "provider code": "the-provider-code-123"} {
		if strings.Contains(logged, secret) {
			t.Errorf("the access log holds the %s", name)
		}
	}
	// The state is also in the start's redirect to the provider, where it
	// is no secret: it opens nothing without the browser's sealed flow
	// cookie. The callback's URI must not repeat it.
	for _, m := range regexp.MustCompile(`"uri":"(/auth/callback/idp[^"]*)"`).FindAllStringSubmatch(logged, -1) {
		if strings.Contains(m[1], state) || strings.Contains(m[1], "the-provider-code") {
			t.Errorf("the callback is logged with its state or code: %s", m[1])
		}
	}
}

// exampleLogBlock is the site's log block in Caddyfile.example.
func exampleLogBlock(t *testing.T, caddyfile string) string {
	t.Helper()
	start := strings.Index(caddyfile, "\tlog {\n")
	if start < 0 {
		t.Fatal("Caddyfile.example has no site log block")
	}
	depth := 0
	for i := start; i < len(caddyfile); i++ {
		switch caddyfile[i] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return caddyfile[start : i+1]
			}
		}
	}
	t.Fatal("Caddyfile.example's log block does not end")
	return ""
}
