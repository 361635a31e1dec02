package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// conformanceBackend builds the store under test. dump, if not nil, returns
// every key and value the backend holds, to prove that no token is stored.
type conformanceBackend func(t *testing.T, opts Options) (store Store, dump func() []string)

// Expiry rules used by the suite.
const (
	confSessionTTL    = 10 * time.Hour
	confIdleTTL       = 2 * time.Hour
	confTouchInterval = time.Minute
)

// runConformance checks every behaviour the Store interface promises. Every
// implementation must pass it.
func runConformance(t *testing.T, backend conformanceBackend) {
	t.Run("reauthentication", func(t *testing.T) { runReauthConformance(t, backend) })
	t.Run("sessions per user", func(t *testing.T) { runCapConformance(t, backend) })
	t.Run("profile", func(t *testing.T) { runProfileConformance(t, backend) })
	setup := func(t *testing.T) (Store, *fakeClock, func() []string) {
		clock := newFakeClock()
		s, dump := backend(t, Options{
			SessionTTL:    confSessionTTL,
			IdleTTL:       confIdleTTL,
			TouchInterval: confTouchInterval,
			Now:           clock.Now,
		})
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s, clock, dump
	}
	ctx := context.Background()
	create := func(t *testing.T, s Store, userID string) (string, *Session) {
		t.Helper()
		tok, sess, err := s.Create(ctx, NewSession{UserID: userID, Provider: "github", Profile: testProfile()})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		return tok, sess
	}
	mustLookup := func(t *testing.T, s Store, tok string) *Session {
		t.Helper()
		sess, err := s.Lookup(ctx, tok)
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		return sess
	}
	mustBeGone := func(t *testing.T, s Store, tok, why string) {
		t.Helper()
		sess, err := s.Lookup(ctx, tok)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: Lookup = %v, %v; want ErrNotFound", why, sess, err)
		}
	}

	t.Run("create and lookup round trip", func(t *testing.T) {
		s, clock, _ := setup(t)
		start := clock.Now()
		tok, created, err := s.Create(ctx, NewSession{UserID: "user|1", Provider: "github", Profile: testProfile()})
		if err != nil {
			t.Fatal(err)
		}
		want := &Session{
			ID:         created.ID,
			UserID:     "user|1",
			Provider:   "github",
			CreatedAt:  start,
			ExpiresAt:  start.Add(confSessionTTL),
			LastUsedAt: start,
			Profile:    testProfile(),
			AuthTime:   start,
		}
		if created.ID == "" {
			t.Fatal("empty session ID")
		}
		assertSession(t, "Create", created, want)
		assertSession(t, "Lookup", mustLookup(t, s, tok), want)
	})

	t.Run("empty profile round trip", func(t *testing.T) {
		s, _, _ := setup(t)
		tok, created, err := s.Create(ctx, NewSession{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		assertSession(t, "Lookup", mustLookup(t, s, tok), created)
	})

	t.Run("user agent is kept, capped, and shown by View", func(t *testing.T) {
		s, clock, _ := setup(t)
		ua := "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"
		tok, created, err := s.Create(ctx, NewSession{UserID: "ua-user", Provider: "password", UserAgent: ua})
		if err != nil {
			t.Fatal(err)
		}
		if created.UserAgent != ua {
			t.Fatalf("Create kept User-Agent %q; want %q", created.UserAgent, ua)
		}
		clock.Advance(2 * confTouchInterval) // the touch rewrites the record in place
		if got := mustLookup(t, s, tok); got.UserAgent != ua {
			t.Fatalf("Lookup User-Agent %q; want %q", got.UserAgent, ua)
		}
		long := strings.Repeat("ü", MaxUserAgentBytes) // 2 bytes each
		_, capped, err := s.Create(ctx, NewSession{UserID: "ua-user", UserAgent: long})
		if err != nil {
			t.Fatalf("an overlong User-Agent is refused (%v); want it cut", err)
		}
		if len(capped.UserAgent) != MaxUserAgentBytes || !utf8.ValidString(capped.UserAgent) {
			t.Fatalf("stored %d bytes (valid UTF-8: %v); want %d", len(capped.UserAgent), utf8.ValidString(capped.UserAgent), MaxUserAgentBytes)
		}
		list, err := s.List(ctx, "ua-user")
		if err != nil || len(list) != 2 || list[0].UserAgent != ua || list[1].UserAgent != capped.UserAgent {
			t.Fatalf("List = %d sessions, %v; want both with their User-Agents", len(list), err)
		}
		v := NewView(list[0], true)
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"id":%q,"current":true,"createdAt":%d,"lastUsedAt":%d,"userAgent":%q,"provider":"password"}`,
			created.ID, created.CreatedAt.UnixMilli(), clock.Now().UnixMilli(), ua)
		if string(raw) != want {
			t.Fatalf("View JSON\n got %s\nwant %s", raw, want)
		}
	})

	t.Run("token shape and uniqueness", func(t *testing.T) {
		s, _, _ := setup(t)
		tokens, ids := map[string]bool{}, map[string]bool{}
		for range 50 {
			tok, sess := create(t, s, "same-user")
			tag, secret, ok := strings.Cut(tok, ".")
			if !ok || len(tok) != TokenLength {
				t.Fatalf("token has length %d and no '.': want %d", len(tok), TokenLength)
			}
			raw, err := b64.DecodeString(secret)
			if err != nil || len(raw) < 32 {
				t.Fatalf("secret decodes to %d bytes (%v); want >= 32 random bytes", len(raw), err)
			}
			if tag == "same-user" || strings.Contains(tok, "same-user") {
				t.Fatal("token carries the user ID")
			}
			if strings.Contains(tok, sess.ID) || strings.Contains(sess.ID, secret) {
				t.Fatal("session ID and token overlap")
			}
			if tokens[tok] || ids[sess.ID] {
				t.Fatal("a token or session ID repeated")
			}
			tokens[tok], ids[sess.ID] = true, true
			if !ValidTokenFormat(tok) {
				t.Fatal("ValidTokenFormat rejects an issued token")
			}
		}
	})

	t.Run("backend holds no token", func(t *testing.T) {
		s, _, dump := setup(t)
		if dump == nil {
			t.Skip("backend cannot be inspected")
		}
		var tokens []string
		for i := range 5 {
			tok, _ := create(t, s, fmt.Sprintf("user-%d", i))
			mustLookup(t, s, tok)
			tokens = append(tokens, tok)
		}
		data := dump()
		if len(data) == 0 {
			t.Fatal("dump is empty: the check would prove nothing")
		}
		for _, tok := range tokens {
			_, secret, _ := strings.Cut(tok, ".")
			for _, d := range data {
				if strings.Contains(d, tok) || strings.Contains(d, secret) {
					t.Fatal("the backend holds a cookie token")
				}
			}
		}
	})

	t.Run("unknown and malformed tokens are not found", func(t *testing.T) {
		s, _, _ := setup(t)
		tok, _ := create(t, s, "u1")
		other, _, err := newToken("u1")
		if err != nil {
			t.Fatal(err)
		}
		tag, secret, _ := strings.Cut(tok, ".")
		if _, err := s.Lookup(ctx, other); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown token: %v; want ErrNotFound", err)
		}
		if _, err := s.Lookup(ctx, userTag("u2")+"."+secret); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token with another user tag: %v; want ErrNotFound", err)
		}
		malformed := map[string]string{
			"empty":          "",
			"short":          "abc",
			"no dot":         tag + "x" + secret,
			"bad char":       tag + "." + secret[:len(secret)-1] + "!",
			"padding":        tag + "." + secret[:len(secret)-1] + "=",
			"trailing space": tok + " ",
			"oversized":      strings.Repeat("A", 1<<20),
			"standard b64":   tag + "." + strings.Repeat("+", len(secret)),
			// 'B' sets one of the last character's unused low bits.
			"non-canonical": tag + "." + secret[:len(secret)-1] + "B",
		}
		for name, m := range malformed {
			_, err := s.Lookup(ctx, m)
			if !errors.Is(err, ErrMalformedToken) || !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: Lookup error %v; want ErrMalformedToken (an ErrNotFound)", name, err)
			}
			if ValidTokenFormat(m) {
				t.Errorf("%s: ValidTokenFormat accepts it", name)
			}
		}
		mustLookup(t, s, tok)
	})

	t.Run("absolute expiry", func(t *testing.T) {
		s, clock, _ := setup(t)
		tok, _ := create(t, s, "u1")
		// Keep it busy so idle expiry never strikes.
		for elapsed := time.Duration(0); elapsed < confSessionTTL-time.Hour; elapsed += time.Hour {
			clock.Advance(time.Hour)
			mustLookup(t, s, tok)
		}
		clock.Advance(time.Hour - time.Millisecond)
		mustLookup(t, s, tok)
		clock.Advance(time.Millisecond)
		mustBeGone(t, s, tok, "at the absolute expiry")
		clock.Advance(-time.Millisecond)
		mustBeGone(t, s, tok, "an expired session stays gone")
	})

	t.Run("a shorter MaxTTL is the absolute expiry", func(t *testing.T) {
		s, clock, _ := setup(t)
		const maxTTL = 3 * time.Hour
		tok, sess, err := s.Create(ctx, NewSession{UserID: "u1", Provider: "github", MaxTTL: maxTTL})
		if err != nil {
			t.Fatal(err)
		}
		if want := clock.Now().Add(maxTTL).Truncate(time.Millisecond); !sess.ExpiresAt.Equal(want) {
			t.Fatalf("ExpiresAt = %v; want %v", sess.ExpiresAt, want)
		}
		// A longer MaxTTL changes nothing.
		long, longSess, err := s.Create(ctx, NewSession{UserID: "u1", Provider: "github", MaxTTL: 2 * confSessionTTL})
		if err != nil {
			t.Fatal(err)
		}
		if want := clock.Now().Add(confSessionTTL).Truncate(time.Millisecond); !longSess.ExpiresAt.Equal(want) {
			t.Fatalf("ExpiresAt with a longer MaxTTL = %v; want the store's %v", longSess.ExpiresAt, want)
		}
		for elapsed := time.Duration(0); elapsed < maxTTL-time.Hour; elapsed += time.Hour {
			clock.Advance(time.Hour)
			mustLookup(t, s, tok)
			mustLookup(t, s, long)
		}
		clock.Advance(time.Hour - time.Millisecond)
		mustLookup(t, s, tok)
		clock.Advance(time.Millisecond)
		mustBeGone(t, s, tok, "at MaxTTL")
		mustLookup(t, s, long)
	})

	t.Run("idle expiry", func(t *testing.T) {
		s, clock, _ := setup(t)
		tokA, _ := create(t, s, "u1")
		tokB, _ := create(t, s, "u1")
		clock.Advance(confIdleTTL - time.Millisecond)
		mustLookup(t, s, tokA)
		clock.Advance(time.Millisecond)
		mustBeGone(t, s, tokB, "unused for the idle TTL")
		mustLookup(t, s, tokA)
	})

	t.Run("touch extends idle expiry", func(t *testing.T) {
		s, clock, _ := setup(t)
		tok, _ := create(t, s, "u1")
		clock.Advance(90 * time.Minute)
		touched := mustLookup(t, s, tok)
		if !touched.LastUsedAt.Equal(clock.Now()) {
			t.Fatalf("LastUsedAt = %v; want %v", touched.LastUsedAt, clock.Now())
		}
		clock.Advance(confIdleTTL - time.Millisecond)
		mustLookup(t, s, tok)
		clock.Advance(confIdleTTL)
		mustBeGone(t, s, tok, "idle TTL after the last touch")
	})

	t.Run("a session in use never idles out", func(t *testing.T) {
		s, clock, _ := setup(t)
		tok, _ := create(t, s, "u1")
		// Used every 4 minutes for twice the idle TTL: each use is due a
		// last-use write (which a store may make in the background).
		for elapsed := time.Duration(0); elapsed < 2*confIdleTTL; elapsed += 4 * time.Minute {
			clock.Advance(4 * time.Minute)
			if got := mustLookup(t, s, tok); !got.LastUsedAt.Equal(clock.Now()) {
				t.Fatalf("after %v: LastUsedAt %v; want now, %v", elapsed, got.LastUsedAt, clock.Now())
			}
			settleTouches(t, s)
		}
		clock.Advance(confIdleTTL - time.Millisecond)
		mustLookup(t, s, tok)
		settleTouches(t, s)
		clock.Advance(confIdleTTL)
		mustBeGone(t, s, tok, "unused for the idle TTL after being used all along")
	})

	t.Run("touch writes at most once per interval", func(t *testing.T) {
		s, clock, _ := setup(t)
		tok, created := create(t, s, "u1")
		t0 := created.LastUsedAt
		steps := []struct {
			advance  time.Duration
			wantLast time.Duration // since t0
		}{
			{30 * time.Second, 0},
			{29 * time.Second, 0},
			{time.Second, 60 * time.Second},
			{30 * time.Second, 60 * time.Second},
			{29*time.Second + 999*time.Millisecond, 60 * time.Second},
			{time.Millisecond, 120 * time.Second},
		}
		for i, st := range steps {
			clock.Advance(st.advance)
			for range 3 {
				got := mustLookup(t, s, tok)
				if want := t0.Add(st.wantLast); !got.LastUsedAt.Equal(want) {
					t.Fatalf("step %d: LastUsedAt = t0+%v; want t0+%v", i, got.LastUsedAt.Sub(t0), st.wantLast)
				}
			}
			// A store may write last use after the lookup (in the
			// background), but before the next interval.
			settleTouches(t, s)
		}
	})

	t.Run("delete", func(t *testing.T) {
		s, _, _ := setup(t)
		log := watchRevocations(s)
		tokA, a := create(t, s, "u1")
		tokB, b := create(t, s, "u1")
		mustLookup(t, s, tokA)
		if err := s.Delete(ctx, tokA); err != nil {
			t.Fatal(err)
		}
		mustBeGone(t, s, tokA, "after Delete")
		if !log.has(a.ID) {
			t.Error("OnRevoke not called for the deleted session")
		}
		if err := s.Delete(ctx, tokA); err != nil {
			t.Fatalf("deleting again: %v; want nil", err)
		}
		if err := s.Delete(ctx, "not a token"); err != nil {
			t.Fatalf("deleting a malformed token: %v; want nil", err)
		}
		mustLookup(t, s, tokB)
		assertIDs(t, s, "u1", b.ID)
	})

	t.Run("lookup by ref", func(t *testing.T) {
		s, clock, _ := setup(t)
		tok, created := create(t, s, "ref-user")
		ref, ok := RefOf(tok)
		if !ok || ref.SessionID != created.ID {
			t.Fatalf("RefOf = %+v, %v; want the session's ID", ref, ok)
		}
		if _, ok := RefOf("not a token"); ok {
			t.Fatal("RefOf accepted a malformed token")
		}
		got, err := s.LookupRef(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		assertSession(t, "LookupRef", got, created)
		_, other := create(t, s, "someone-else")
		for name, bad := range map[string]Ref{
			"another user's tag": {UserTag: userTag("someone-else"), SessionID: ref.SessionID},
			"another session":    {UserTag: ref.UserTag, SessionID: other.ID},
			"malformed":          {UserTag: "x", SessionID: ref.SessionID},
			"empty":              {},
		} {
			if sess, err := s.LookupRef(ctx, bad); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: LookupRef = %v, %v; want ErrNotFound", name, sess, err)
			}
		}
		if err := s.Delete(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if sess, err := s.LookupRef(ctx, ref); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after Delete: LookupRef = %v, %v; want ErrNotFound", sess, err)
		}
		tok2, _ := create(t, s, "ref-user")
		ref2, _ := RefOf(tok2)
		clock.Advance(confIdleTTL + time.Second)
		if sess, err := s.LookupRef(ctx, ref2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("idle-expired: LookupRef = %v, %v; want ErrNotFound", sess, err)
		}
	})

	t.Run("unregistered revoke hook is not called", func(t *testing.T) {
		s, _, _ := setup(t)
		kept := watchRevocations(s)
		var dropped atomic.Int32
		unregister := s.OnRevoke(func(string) { dropped.Add(1) })
		unregister()
		tok, sess := create(t, s, "u1")
		if err := s.Delete(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if !kept.has(sess.ID) {
			t.Fatal("the hook still registered was not called")
		}
		if n := dropped.Load(); n != 0 {
			t.Errorf("an unregistered hook was called %d times", n)
		}
	})

	t.Run("delete by id", func(t *testing.T) {
		s, _, _ := setup(t)
		log := watchRevocations(s)
		tokA, a := create(t, s, "u1")
		tokB, b := create(t, s, "u1")
		tokC, c := create(t, s, "u2")
		mustLookup(t, s, tokA)
		if err := s.DeleteByID(ctx, "u1", a.ID); err != nil {
			t.Fatal(err)
		}
		mustBeGone(t, s, tokA, "after DeleteByID")
		if !log.has(a.ID) {
			t.Error("OnRevoke not called")
		}
		if err := s.DeleteByID(ctx, "u1", a.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting again: %v; want ErrNotFound", err)
		}
		if err := s.DeleteByID(ctx, "u1", c.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting another user's session: %v; want ErrNotFound", err)
		}
		for _, bad := range []string{"", "nope", strings.Repeat("x", 10000), "u1"} {
			if err := s.DeleteByID(ctx, "u1", bad); !errors.Is(err, ErrNotFound) {
				t.Errorf("malformed ID: %v; want ErrNotFound", err)
			}
		}
		mustLookup(t, s, tokB)
		mustLookup(t, s, tokC)
		assertIDs(t, s, "u1", b.ID)
		assertIDs(t, s, "u2", c.ID)
	})

	t.Run("delete user", func(t *testing.T) {
		s, _, _ := setup(t)
		log := watchRevocations(s)
		var toks []string
		var ids []string
		for range 3 {
			tok, sess := create(t, s, "u1")
			mustLookup(t, s, tok)
			toks, ids = append(toks, tok), append(ids, sess.ID)
		}
		tokOther, other := create(t, s, "u2")
		mustLookup(t, s, tokOther)
		n, err := s.DeleteUser(ctx, "u1", "")
		if err != nil || n != 3 {
			t.Fatalf("DeleteUser = %d, %v; want 3, nil", n, err)
		}
		for _, tok := range toks {
			mustBeGone(t, s, tok, "after DeleteUser")
		}
		for _, id := range ids {
			if !log.has(id) {
				t.Error("OnRevoke not called for every session")
			}
		}
		assertIDs(t, s, "u1")
		mustLookup(t, s, tokOther)
		assertIDs(t, s, "u2", other.ID)
		if n, err := s.DeleteUser(ctx, "u1", ""); err != nil || n != 0 {
			t.Fatalf("DeleteUser of a user without sessions = %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("delete user except one", func(t *testing.T) {
		s, _, _ := setup(t)
		log := watchRevocations(s)
		tokA, a := create(t, s, "u1")
		tokB, b := create(t, s, "u1")
		tokC, c := create(t, s, "u1")
		n, err := s.DeleteUser(ctx, "u1", b.ID)
		if err != nil || n != 2 {
			t.Fatalf("DeleteUser = %d, %v; want 2, nil", n, err)
		}
		mustBeGone(t, s, tokA, "after DeleteUser")
		mustBeGone(t, s, tokC, "after DeleteUser")
		mustLookup(t, s, tokB)
		if log.has(b.ID) {
			t.Error("OnRevoke called for the kept session")
		}
		if !log.has(a.ID) || !log.has(c.ID) {
			t.Error("OnRevoke not called for the ended sessions")
		}
		assertIDs(t, s, "u1", b.ID)
	})

	t.Run("list", func(t *testing.T) {
		s, clock, _ := setup(t)
		if got, err := s.List(ctx, "nobody"); err != nil || len(got) != 0 {
			t.Fatalf("List(nobody) = %v, %v; want empty", got, err)
		}
		_, old := create(t, s, "u1")
		clock.Advance(90 * time.Minute)
		tokMid, mid := create(t, s, "u1")
		clock.Advance(time.Minute)
		_, newest := create(t, s, "u1")
		create(t, s, "u2")
		got, err := s.List(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("List returned %d sessions; want 3", len(got))
		}
		for i, want := range []*Session{old, mid, newest} {
			assertSession(t, fmt.Sprintf("List[%d]", i), got[i], want)
		}
		// old idles out; mid is kept alive.
		clock.Advance(30 * time.Minute)
		mustLookup(t, s, tokMid)
		assertIDs(t, s, "u1", mid.ID, newest.ID)
	})

	t.Run("new session ID on every create", func(t *testing.T) {
		s, _, _ := setup(t)
		tokA, a := create(t, s, "u1")
		tokB, b := create(t, s, "u1")
		if a.ID == b.ID || tokA == tokB {
			t.Fatal("two sign-ins share a session ID or token")
		}
	})

	t.Run("invalid create input", func(t *testing.T) {
		s, _, _ := setup(t)
		bad := map[string]NewSession{
			"no user":       {},
			"long user":     {UserID: strings.Repeat("u", MaxUserIDBytes+1)},
			"long provider": {UserID: "u", Provider: strings.Repeat("p", MaxProviderBytes+1)},
			"long picture":  {UserID: "u", Profile: Profile{Picture: strings.Repeat("p", MaxPictureBytes+1)}},
		}
		for name, n := range bad {
			if _, _, err := s.Create(ctx, n); !errors.Is(err, ErrInvalidSession) || IsUnavailable(err) {
				t.Errorf("%s: %v; want ErrInvalidSession", name, err)
			}
		}
	})

	t.Run("returned sessions are copies", func(t *testing.T) {
		s, _, _ := setup(t)
		tok, created := create(t, s, "u1")
		created.UserID = "mallory"
		got := mustLookup(t, s, tok)
		got.Profile.Email = "mallory@example.com"
		if again := mustLookup(t, s, tok); again.UserID != "u1" || again.Profile.Email != testProfile().Email {
			t.Fatal("changing a returned session changed the stored one")
		}
	})

	t.Run("concurrent lookups", func(t *testing.T) {
		s, clock, _ := setup(t)
		tok, _ := create(t, s, "u1")
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 64 {
			wg.Go(func() {
				if i%16 == 0 {
					clock.Advance(time.Second)
				}
				if _, err := s.Lookup(ctx, tok); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("longest user ID", func(t *testing.T) {
		s, _, _ := setup(t)
		long := "ü" + strings.Repeat("x", MaxUserIDBytes-2)
		tokA, a := create(t, s, long)
		tokB, _ := create(t, s, long)
		tokC, _ := create(t, s, long)
		assertSession(t, "Lookup", mustLookup(t, s, tokA), a)
		if err := s.DeleteByID(ctx, long, a.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteUser(ctx, long, ""); err != nil || n != 2 {
			t.Fatalf("DeleteUser = %d, %v; want 2", n, err)
		}
		for _, tok := range []string{tokA, tokB, tokC} {
			mustBeGone(t, s, tok, "after deletion")
		}
	})

	t.Run("ping", func(t *testing.T) {
		s, _, _ := setup(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("instance registry", func(t *testing.T) {
		s, clock, _ := setup(t)
		runInstanceRegistry(t, s, clock)
	})
}

func assertSession(t *testing.T, what string, got, want *Session) {
	t.Helper()
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, *got, *want)
	}
}

// normalize makes times comparable with DeepEqual.
func normalize(s *Session) Session {
	c := *s
	c.CreatedAt = c.CreatedAt.UTC().Round(0)
	c.ExpiresAt = c.ExpiresAt.UTC().Round(0)
	c.LastUsedAt = c.LastUsedAt.UTC().Round(0)
	c.AuthTime = c.AuthTime.UTC().Round(0)
	if len(c.AMR) == 0 {
		c.AMR = nil
	}
	return c
}

func assertIDs(t *testing.T, s Store, userID string, want ...string) {
	t.Helper()
	got, err := s.List(context.Background(), userID)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var ids []string
	for _, g := range got {
		if g.UserID != userID {
			t.Fatalf("List(%q) returned a session of %q", userID, g.UserID)
		}
		ids = append(ids, g.ID)
	}
	if len(ids) != len(want) || (len(want) > 0 && !reflect.DeepEqual(ids, want)) {
		t.Fatalf("List(%q) IDs = %v; want %v", userID, ids, want)
	}
}
