package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// outageStore is an in-process store whose reads and writes can be made to
// fail as an unreachable store's do.
type outageStore struct {
	*session.MemoryStore
	readsDown, writesDown atomic.Bool
	// holdLookup, when set, holds the next lookup after it has read the
	// session: it sends on the channel, then waits to receive.
	holdLookup atomic.Pointer[chan struct{}]
}

func newOutageStore(t *testing.T) *outageStore {
	m := session.NewMemoryStore(session.Options{})
	t.Cleanup(func() { _ = m.Close() })
	return &outageStore{MemoryStore: m}
}

func (o *outageStore) down(read bool) error {
	if (read && o.readsDown.Load()) || (!read && o.writesDown.Load()) {
		return fmt.Errorf("%w: test outage", session.ErrUnavailable)
	}
	return nil
}

func (o *outageStore) setDown(reads, writes bool) {
	o.readsDown.Store(reads)
	o.writesDown.Store(writes)
}

func (o *outageStore) Lookup(ctx context.Context, token string) (*session.Session, error) {
	if err := o.down(true); err != nil {
		return nil, err
	}
	sess, err := o.MemoryStore.Lookup(ctx, token)
	if hold := o.holdLookup.Swap(nil); hold != nil {
		*hold <- struct{}{} // read
		<-*hold             // released
	}
	return sess, err
}

func (o *outageStore) LookupRef(ctx context.Context, ref session.Ref) (*session.Session, error) {
	if err := o.down(true); err != nil {
		return nil, err
	}
	return o.MemoryStore.LookupRef(ctx, ref)
}

func (o *outageStore) List(ctx context.Context, userID string) ([]*session.Session, error) {
	if err := o.down(true); err != nil {
		return nil, err
	}
	return o.MemoryStore.List(ctx, userID)
}

func (o *outageStore) Delete(ctx context.Context, token string) error {
	if err := o.down(false); err != nil {
		return err
	}
	return o.MemoryStore.Delete(ctx, token)
}

func (o *outageStore) DeleteByID(ctx context.Context, userID, id string) error {
	if err := o.down(false); err != nil {
		return err
	}
	return o.MemoryStore.DeleteByID(ctx, userID, id)
}

func (o *outageStore) DeleteUser(ctx context.Context, userID, except string) (int, error) {
	if err := o.down(false); err != nil {
		return 0, err
	}
	return o.MemoryStore.DeleteUser(ctx, userID, except)
}

// live reports whether the store itself still has the token's session.
func (o *outageStore) live(token string) bool {
	_, err := o.MemoryStore.Lookup(context.Background(), token)
	return err == nil
}

// failingJournal refuses to keep anything.
type failingJournal struct{ *MemoryJournal }

func (failingJournal) Put(context.Context, PendingRevocation) error {
	return errors.New("storage is read-only")
}

func withJournal(j RevocationJournal) gatewayOption {
	return func(c *Config) { c.Journal = j }
}

// signOutAs posts to /auth/signout as the site's own page: a fetch, or a
// form post from a page (navigate).
func signOutAs(t *testing.T, g *Gateway, token string, all, form bool) *httptest.ResponseRecorder {
	t.Helper()
	body := ""
	if all {
		body = "all=1"
	}
	r := httptest.NewRequest("POST", testIssuer+"/auth/signout", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if form {
		r.Header.Set("Sec-Fetch-Mode", "navigate")
	}
	r.AddCookie(&http.Cookie{Name: g.cfg.Cookie.forRequest(r).name, Value: token})
	w := httptest.NewRecorder()
	if err := g.ServeHTTP(w, r, nextNoop); err != nil {
		t.Fatal(err)
	}
	return w
}

func clearsCookie(w *httptest.ResponseRecorder) bool {
	for _, c := range w.Result().Cookies() {
		if strings.Contains(c.Name, "convex_session") && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

// served reports whether g serves the protected page to token.
func served(t *testing.T, g *Gateway, token string) bool {
	t.Helper()
	return call(t, g, "GET", "/loggedin", token, true).Code == http.StatusOK
}

// eventually polls cond generously: the retry loop applies a kept
// revocation within about a second of the store answering, but a starved
// machine may take longer.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func journalLen(t *testing.T, j RevocationJournal) int {
	t.Helper()
	l, err := j.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// TestSignOutWhileStoreCannotTakeIt: a sign-out the store cannot take in
// time clears the cookie, says so in words (202 JSON, or a page for a form
// post), is refused at once by this gateway, and is applied once the store
// answers again; whether or not the store could even say whose session it
// was.
func TestSignOutWhileStoreCannotTakeIt(t *testing.T) {
	for _, readsDown := range []bool{false, true} {
		t.Run(fmt.Sprintf("reads down %v", readsDown), func(t *testing.T) {
			st := newOutageStore(t)
			journal := NewMemoryJournal()
			g := newTestGateway(t, issuer.ES256, st, withJournal(journal))
			tok := newSession(t, st, "u1")
			if !served(t, g, tok) {
				t.Fatal("the session is not served before the outage")
			}

			st.setDown(readsDown, true)
			w := signOutAs(t, g, tok, false, false)
			if w.Code != http.StatusAccepted || !clearsCookie(w) || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("sign-out during the outage: %d %v %q", w.Code, w.Header(), w.Body)
			}
			var body struct{ Status, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Status != "signed_out_pending" ||
				!strings.Contains(body.Message, "signed out in this browser") || !strings.Contains(body.Message, "as soon as the store answers") {
				t.Fatalf("sign-out answer: %s", w.Body)
			}
			if !st.live(tok) {
				t.Fatal("the store took the revocation although it was down")
			}
			st.setDown(false, true) // the session could be read again
			if served(t, g, tok) {
				t.Fatal("the gateway served a session signed out while the store was down")
			}
			if n := journalLen(t, journal); n != 1 {
				t.Fatalf("%d revocations kept; want 1", n)
			}

			st.setDown(false, false)
			eventually(t, "the kept revocation is applied once the store answers", func() bool { return !st.live(tok) })
			eventually(t, "the journal is emptied", func() bool { return journalLen(t, journal) == 0 })
			if served(t, g, tok) {
				t.Fatal("the session is served after its revocation was applied")
			}
		})
	}
}

// TestSignOutAppliedDuringALookup: a request whose lookup read the session
// before its kept sign-out was applied, and returned after the gateway
// forgot it as applied, is not served (a loaded Sentinel failover test
// found one served right after its sign-out).
func TestSignOutAppliedDuringALookup(t *testing.T) {
	st := newOutageStore(t)
	journal := NewMemoryJournal()
	g := newTestGateway(t, issuer.ES256, st, withJournal(journal))
	tok := newSession(t, st, "u1")
	st.setDown(false, true)
	if w := signOutAs(t, g, tok, false, false); w.Code != http.StatusAccepted {
		t.Fatalf("sign-out during the outage: %d", w.Code)
	}
	hold := make(chan struct{})
	st.holdLookup.Store(&hold)
	servedDuring := make(chan bool)
	go func() { servedDuring <- served(t, g, tok) }()
	<-hold // the lookup has read the session, still in the store
	st.setDown(false, false)
	eventually(t, "the kept revocation is applied and forgotten", func() bool { return journalLen(t, journal) == 0 && g.pending.n.Load() == 0 })
	hold <- struct{}{}
	if <-servedDuring {
		t.Fatal("a lookup that read the session before its sign-out was applied served it after")
	}
}

// TestSignOutEverywhereWhileStoreCannotTakeIt: sign out everywhere, kept
// for the store, refuses the user's other sessions here at once and ends
// them once the store answers, but not a session started after it.
func TestSignOutEverywhereWhileStoreCannotTakeIt(t *testing.T) {
	st := newOutageStore(t)
	g := newTestGateway(t, issuer.ES256, st)
	tok := newSession(t, st, "u2")
	other := newSession(t, st, "u2")
	stranger := newSession(t, st, "u3")

	st.setDown(false, true)
	w := signOutAs(t, g, tok, true, true)
	page := w.Body.String()
	if w.Code != http.StatusOK || !clearsCookie(w) || !strings.Contains(page, "You are signed out") ||
		!strings.Contains(page, "other devices will be signed out as soon as the store answers") ||
		!strings.Contains(page, `href="/"`) || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
		w.Header().Get("Cache-Control") != "no-store" || !strings.Contains(w.Header().Get("Content-Security-Policy"), "form-action 'self'") {
		t.Fatalf("form sign-out everywhere during the outage: %d %v\n%s", w.Code, w.Header(), page)
	}
	if served(t, g, tok) || served(t, g, other) {
		t.Fatal("a session of the user who signed out everywhere was served while the store was down")
	}
	if !served(t, g, stranger) {
		t.Fatal("another user's session was refused")
	}
	time.Sleep(10 * time.Millisecond) // a later CreatedAt than the sign-out
	later := newSession(t, st, "u2")
	if !served(t, g, later) {
		t.Fatal("a session started after the sign-out everywhere was refused")
	}

	st.setDown(false, false)
	eventually(t, "both sessions end once the store answers", func() bool { return !st.live(tok) && !st.live(other) })
	if !st.live(later) || !st.live(stranger) {
		t.Fatal("the kept sign-out everywhere ended a later session or another user's")
	}
}

// TestSignOutKeptAcrossRestart: a kept revocation outlives the gateway
// that kept it: the next one (a restart, a reload, another instance on the
// same storage) refuses the session from its first request and applies it.
func TestSignOutKeptAcrossRestart(t *testing.T) {
	st := newOutageStore(t)
	journal := NewMemoryJournal()
	first := newTestGateway(t, issuer.ES256, st, withJournal(journal))
	tok := newSession(t, st, "u4")

	st.setDown(true, true)
	if w := signOutAs(t, first, tok, false, false); w.Code != http.StatusAccepted {
		t.Fatalf("sign-out: %d %s", w.Code, w.Body)
	}
	first.Close()

	st.setDown(false, true)
	second := newTestGateway(t, issuer.ES256, st, withJournal(journal))
	if served(t, second, tok) {
		t.Fatal("a new gateway served a session whose sign-out was kept before it started")
	}
	st.setDown(false, false)
	eventually(t, "the new gateway applies the kept revocation", func() bool { return !st.live(tok) })
}

// TestSignOutNotKeptAnswers503: when the revocation can be neither applied
// nor kept, the sign-out answers 503 and leaves the cookie, so the browser
// is not told it signed out while its session still works.
func TestSignOutNotKeptAnswers503(t *testing.T) {
	st := newOutageStore(t)
	g := newTestGateway(t, issuer.ES256, st, withJournal(failingJournal{NewMemoryJournal()}))
	tok := newSession(t, st, "u5")
	st.setDown(false, true)
	w := signOutAs(t, g, tok, false, false)
	if w.Code != http.StatusServiceUnavailable || clearsCookie(w) {
		t.Fatalf("sign-out that could not be kept: %d %v", w.Code, w.Header())
	}
	if !served(t, g, tok) {
		t.Fatal("a sign-out answered 503 but the session was refused")
	}
}

// TestSignOutPendingIsBounded: sign-outs of cookies the store cannot check
// (random ones, during an outage) fill the journal only up to its bound.
func TestSignOutPendingIsBounded(t *testing.T) {
	st := newOutageStore(t)
	journal := NewMemoryJournal()
	g := newTestGateway(t, issuer.ES256, st, withJournal(journal))
	g.pending.max = 2
	st.setDown(true, true)
	for i := range 3 {
		want := http.StatusAccepted
		if i == 2 {
			want = http.StatusServiceUnavailable
		}
		if w := signOutAs(t, g, randomSessionToken(t), false, false); w.Code != want {
			t.Fatalf("sign-out %d: %d; want %d", i+1, w.Code, want)
		}
	}
	if n := journalLen(t, journal); n != 2 {
		t.Fatalf("%d revocations kept; want the bound, 2", n)
	}
}
