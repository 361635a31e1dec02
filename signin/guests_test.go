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

func (ge *guestEnv) who(b *browser) whoami {
	ge.t.Helper()
	w, ok := b.Whoami(ge.origin)
	if !ok {
		ge.t.Fatal("not signed in")
	}
	return w
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
