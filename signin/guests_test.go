package signin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin/signintest"
)

// guestEnv is a site with passwords, guests and the three OAuth
// providers, recording every session start.
type guestEnv struct {
	*oauthEnv
	mu      sync.Mutex
	started []Result
}

func newGuestEnv(t *testing.T, more func(c *Config)) *guestEnv {
	t.Helper()
	ge := &guestEnv{}
	ge.oauthEnv = newOAuthEnvOn(t, nil, false, func(c *Config) {
		c.Password = &PasswordConfig{Argon2: testArgon2}
		c.Anonymous = &AnonymousConfig{TTL: time.Hour}
		if more != nil {
			more(c)
		}
	})
	ge.host.results = func(r Result) {
		ge.mu.Lock()
		defer ge.mu.Unlock()
		ge.started = append(ge.started, r)
	}
	return ge
}

// lastStart is the most recent session start.
func (ge *guestEnv) lastStart() Result {
	ge.mu.Lock()
	defer ge.mu.Unlock()
	if len(ge.started) == 0 {
		ge.t.Fatal("no session was started")
	}
	return ge.started[len(ge.started)-1]
}

func TestGuestsAreLimitedAndSameOrigin(t *testing.T) {
	ae := newGuestEnv(t, func(c *Config) { c.Limits.SignUp = session.Rate{Events: 2, Per: time.Hour} })
	for i := range 2 {
		b := newBrowser(t)
		if resp, body := b.Post(ae.origin+"/auth/signin/anonymous", url.Values{}); !succeeded(resp) {
			t.Fatalf("guest %d: status %d: %s", i, resp.StatusCode, body)
		}
	}
	b := newBrowser(t)
	refused, body := b.Post(ae.origin+"/auth/signin/anonymous", url.Values{})
	resp, page := b.Back(refused, body)
	if refused.Header.Get("Retry-After") == "" || resp.StatusCode != http.StatusOK || !strings.Contains(page, "Too many") ||
		!strings.Contains(page, "Please wait "+waitWords(refused.Header.Get("Retry-After"))) {
		t.Fatalf("third guest from one address: %d; want the sign-in page saying how long to wait", resp.StatusCode)
	}
	if resp, _ := newBrowser(t).Fetch(ae.origin+"/auth/signin/anonymous", url.Values{}); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a script's third guest: status %d; want 429 with Retry-After", resp.StatusCode)
	}
	if _, ok := b.Whoami(ae.origin); ok {
		t.Fatal("a refused guest is signed in")
	}
	resp, _ = newBrowser(t).CrossSite(ae.origin+"/auth/signin/anonymous", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site guest: status %d; want 403", resp.StatusCode)
	}
	if resp, _ := newBrowser(t).Get(ae.origin + "/auth/signin/anonymous"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET guest: status %d; want 405", resp.StatusCode)
	}
}

// Under link_by_email, a guest whose new account's verified email belongs
// to a user signs in as that user; the guest stays behind.
func TestGuestReplacedByVerifiedEmailOwner(t *testing.T) {
	ae := newGuestEnv(t, func(c *Config) { c.LinkByEmail = true })
	owner := newBrowser(t)
	ae.signIn(owner, "google", "")
	ownerWho := ae.who(owner)
	g := newBrowser(t)
	g.Post(ae.origin+"/auth/signin/anonymous", url.Values{})
	guest := ae.who(g)
	ae.signIn(g, "zitadel", "")
	if w := ae.who(g); w.UserID != ownerWho.UserID {
		t.Fatalf("the guest signed in as %s; want the email's owner %s", w.UserID, ownerWho.UserID)
	}
	if r := ae.lastStart(); r.ReplacedUserID != guest.UserID || r.UpgradedGuest {
		t.Fatalf("result %+v; want ReplacedUserID %s", r, guest.UserID)
	}
	u, err := ae.store.GetUser(context.Background(), guest.UserID)
	if err != nil || !u.Anonymous {
		t.Fatalf("the guest left behind = %+v, %v; want still a guest", u, err)
	}
	if a, _ := ae.store.GetAccount(context.Background(), "zitadel", "id2"); a == nil || a.UserID != ownerWho.UserID {
		t.Fatal("the new account was not linked to the email's owner")
	}
}

// mailGuestEnv is guestEnv with email links.
func newMailGuestEnv(t *testing.T) (*guestEnv, *smtpReceiver) {
	t.Helper()
	rcv := startSMTP(t, nil, "", "")
	ge := newGuestEnv(t, func(c *Config) {
		c.Mail = &MailConfig{Mailer: signintest.Mailer(rcv), QuietNewDevices: true}
		c.Email = &EmailConfig{}
	})
	return ge, rcv
}

// TestGuestSignsUpInPlaceOnlyByItsOwnFlow: a guest's link, asked for in
// its own browser, signs it up in place (same user ID); a link another
// browser asked for, used here with its code, signs this browser in as
// that account and leaves the guest as it was, so the account's owner
// never gets the guest's user.
func TestGuestSignsUpInPlaceOnlyByItsOwnFlow(t *testing.T) {
	ge, rcv := newMailGuestEnv(t)
	ctx := context.Background()
	newGuest := func() (*browser, string) {
		b := newBrowser(t)
		b.Post(ge.origin+"/auth/signin/anonymous", url.Values{})
		return b, ge.who(b).UserID
	}

	own, ownID := newGuest()
	requestLink(t, ge.env, own, "own@example.com", "")
	if resp, _ := useLink(t, own, mailLink(t, rcv)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the guest's own link: %d", resp.StatusCode)
	}
	if w := ge.who(own); w.UserID != ownID || !ge.lastStart().UpgradedGuest {
		t.Fatalf("the guest's own link signed it in as %s; want it upgraded in place, %s", w.UserID, ownID)
	}

	victim, victimID := newGuest()
	attacker := newBrowser(t)
	requestLink(t, ge.env, attacker, "attacker@example.com", "")
	link, code := mailLink(t, rcv), mailCode(t, rcv)
	if resp, _ := useLinkWithCode(t, victim, link, code); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the guest typing another browser's code: %d", resp.StatusCode)
	}
	w := ge.who(victim)
	if w.UserID == victimID || ge.lastStart().ReplacedUserID != victimID || ge.lastStart().UpgradedGuest {
		t.Fatalf("the guest typing another browser's code became user %s (%+v); want another user, the guest replaced", w.UserID, ge.lastStart())
	}
	if u, err := ge.store.GetUser(ctx, victimID); err != nil || !u.Anonymous {
		t.Fatalf("the guest left behind = %+v, %v; want still a guest", u, err)
	}
	requestLink(t, ge.env, attacker, "attacker@example.com", "")
	useLink(t, attacker, mailLink(t, rcv))
	if a := ge.who(attacker); a.UserID == victimID || a.UserID != w.UserID {
		t.Fatalf("the attacker's account is user %s; want %s, not the guest %s", a.UserID, w.UserID, victimID)
	}
}

// TestGuestNotSignedUpByAFlowStartedBeforeIt: an OAuth flow started before
// the browser became a guest signs in as its own account; the guest stays.
func TestGuestNotSignedUpByAFlowStartedBeforeIt(t *testing.T) {
	ge := newGuestEnv(t, nil)
	b := newBrowser(t)
	authURL := ge.start(b, "zitadel", "")
	b.Post(ge.origin+"/auth/signin/anonymous", url.Values{})
	guest := ge.who(b)
	callback := ge.op.SignIn(b, authURL)
	if resp, _ := b.Get(callback); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	if w := ge.who(b); w.UserID == guest.UserID || ge.lastStart().ReplacedUserID != guest.UserID {
		t.Fatalf("the flow started before the guest signed it up in place: %s (%+v)", w.UserID, ge.lastStart())
	}
	// Started as the guest, it signs the guest up in place.
	g := newBrowser(t)
	g.Post(ge.origin+"/auth/signin/anonymous", url.Values{})
	gw := ge.who(g)
	ge.signIn(g, "google", "")
	if w := ge.who(g); w.UserID != gw.UserID || !ge.lastStart().UpgradedGuest {
		t.Fatalf("the guest's own flow: user %s; want %s upgraded", w.UserID, gw.UserID)
	}
}
