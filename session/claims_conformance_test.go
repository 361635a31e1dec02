package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// claimsChanges records OnClaimsChange calls.
type claimsChanges struct {
	mu       sync.Mutex
	users    []string
	sessions []string
}

func watchClaims(s ClaimsStore) *claimsChanges {
	c := &claimsChanges{}
	s.OnClaimsChange(func(userID, sessionID string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if userID != "" {
			c.users = append(c.users, userID)
		}
		if sessionID != "" {
			c.sessions = append(c.sessions, sessionID)
		}
	})
	return c
}

func (c *claimsChanges) sawUser(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range c.users {
		if u == id {
			return true
		}
	}
	return false
}

func (c *claimsChanges) sawSession(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sessions {
		if s == id {
			return true
		}
	}
	return false
}

// runClaimsConformance checks every behaviour ClaimsStore promises.
func runClaimsConformance(t *testing.T, backend conformanceBackend) {
	ctx := context.Background()
	const keep = time.Hour
	setup := func(t *testing.T) (Store, ClaimsStore, *fakeClock) {
		clock := newFakeClock()
		s, _ := backend(t, Options{SessionTTL: confSessionTTL, IdleTTL: confIdleTTL, TouchInterval: confTouchInterval, Now: clock.Now})
		t.Cleanup(func() { _ = s.Close() })
		cs, ok := s.(ClaimsStore)
		if !ok {
			t.Fatalf("%T is no ClaimsStore", s)
		}
		return s, cs, clock
	}
	newSession := func(t *testing.T, s Store, userID string) *Session {
		t.Helper()
		_, sess, err := s.Create(ctx, NewSession{UserID: userID, Provider: "github"})
		if err != nil {
			t.Fatal(err)
		}
		return sess
	}
	load := func(t *testing.T, cs ClaimsStore, sess *Session) ClaimsState {
		t.Helper()
		st, err := cs.LoadClaims(ctx, sess.UserID, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	t.Run("a new session has no claims state", func(t *testing.T) {
		s, cs, _ := setup(t)
		st := load(t, cs, newSession(t, s, "u1"))
		if st.Record != nil || st.Generation != 0 || st.Context != nil {
			t.Fatalf("state %+v; want none", st)
		}
	})

	t.Run("a saved result round trips", func(t *testing.T) {
		s, cs, clock := setup(t)
		sess := newSession(t, s, "u1")
		rec := ClaimsRecord{Claims: []byte(`{"role":"admin"}`), FetchedAt: clock.Now()}
		if ok, err := cs.SaveClaims(ctx, sess.UserID, sess.ID, rec, keep); err != nil || !ok {
			t.Fatalf("SaveClaims = %v, %v", ok, err)
		}
		st := load(t, cs, sess)
		if st.Record == nil || string(st.Record.Claims) != `{"role":"admin"}` || !st.Record.FetchedAt.Equal(clock.Now()) || st.Record.Generation != 0 {
			t.Fatalf("record %+v", st.Record)
		}
		// Another session of the user has its own.
		if other := load(t, cs, newSession(t, s, "u1")); other.Record != nil {
			t.Fatalf("another session sees %+v", other.Record)
		}
	})

	t.Run("a refresh makes every kept result stale and refuses results of before it", func(t *testing.T) {
		s, cs, clock := setup(t)
		changes := watchClaims(cs)
		a, b := newSession(t, s, "u1"), newSession(t, s, "u1")
		other := newSession(t, s, "u2")
		for _, sess := range []*Session{a, b, other} {
			if _, err := cs.SaveClaims(ctx, sess.UserID, sess.ID, ClaimsRecord{Claims: []byte(`{"role":"admin"}`), FetchedAt: clock.Now()}, keep); err != nil {
				t.Fatal(err)
			}
		}
		if err := cs.RefreshClaims(ctx, "u1", keep); err != nil {
			t.Fatal(err)
		}
		if !changes.sawUser("u1") {
			t.Fatal("the refresh was not told to this instance's hooks")
		}
		for _, sess := range []*Session{a, b} {
			if st := load(t, cs, sess); st.Record != nil || st.Generation != 1 {
				t.Fatalf("after the refresh: %+v; want no record, generation 1", st)
			}
		}
		if st := load(t, cs, other); st.Record == nil || st.Generation != 0 {
			t.Fatalf("another user's result after the refresh: %+v", st)
		}
		// A call that began before the refresh saves nothing.
		if ok, err := cs.SaveClaims(ctx, a.UserID, a.ID, ClaimsRecord{Claims: []byte(`{"role":"admin"}`), FetchedAt: clock.Now(), Generation: 0}, keep); err != nil || ok {
			t.Fatalf("a result of the previous generation: saved %v, %v", ok, err)
		}
		if ok, err := cs.SaveClaims(ctx, a.UserID, a.ID, ClaimsRecord{Claims: []byte(`{"role":"member"}`), FetchedAt: clock.Now(), Generation: 1}, keep); err != nil || !ok {
			t.Fatalf("a result of the new generation: saved %v, %v", ok, err)
		}
		if st := load(t, cs, a); st.Record == nil || string(st.Record.Claims) != `{"role":"member"}` {
			t.Fatalf("after saving again: %+v", st.Record)
		}
	})

	t.Run("one lease at a time", func(t *testing.T) {
		s, cs, clock := setup(t)
		sess := newSession(t, s, "u1")
		first, err := cs.LeaseClaims(ctx, sess.UserID, sess.ID, 200*time.Millisecond)
		if err != nil || first == "" {
			t.Fatalf("first lease: %q, %v", first, err)
		}
		if second, err := cs.LeaseClaims(ctx, sess.UserID, sess.ID, time.Minute); err != nil || second != "" {
			t.Fatalf("second lease while the first holds: %q, %v", second, err)
		}
		if other, err := cs.LeaseClaims(ctx, sess.UserID, newSession(t, s, "u1").ID, time.Minute); err != nil || other == "" {
			t.Fatalf("another session's lease: %q, %v", other, err)
		}
		if err := cs.ReleaseClaims(ctx, sess.UserID, sess.ID, "not-the-lease"); err != nil {
			t.Fatal(err)
		}
		if again, _ := cs.LeaseClaims(ctx, sess.UserID, sess.ID, time.Minute); again != "" {
			t.Fatal("a release by another lease ID freed the lease")
		}
		if err := cs.ReleaseClaims(ctx, sess.UserID, sess.ID, first); err != nil {
			t.Fatal(err)
		}
		third, err := cs.LeaseClaims(ctx, sess.UserID, sess.ID, 200*time.Millisecond)
		if err != nil || third == "" {
			t.Fatalf("lease after release: %q, %v", third, err)
		}
		// It ends by itself (the in-process store on the store's clock,
		// Redis on its own).
		clock.Advance(time.Second)
		waitFor(t, 5*time.Second, "the lease to expire", func() bool {
			id, err := cs.LeaseClaims(ctx, sess.UserID, sess.ID, time.Minute)
			return err == nil && id != ""
		})
	})

	t.Run("a context is stored with its result and told to every instance", func(t *testing.T) {
		s, cs, clock := setup(t)
		changes := watchClaims(cs)
		sess := newSession(t, s, "u1")
		if _, err := cs.SaveClaims(ctx, sess.UserID, sess.ID, ClaimsRecord{Claims: []byte(`{"org":"o1"}`), FetchedAt: clock.Now()}, keep); err != nil {
			t.Fatal(err)
		}
		rec := ClaimsRecord{Claims: []byte(`{"org":"o2","orgRole":"owner"}`), FetchedAt: clock.Now()}
		if err := cs.SetClaimsContext(ctx, sess.UserID, sess.ID, []byte(`{"org":"o2"}`), sess.ExpiresAt, rec, keep); err != nil {
			t.Fatal(err)
		}
		if !changes.sawSession(sess.ID) {
			t.Fatal("the context switch was not told to this instance's hooks")
		}
		st := load(t, cs, sess)
		if string(st.Context) != `{"org":"o2"}` || st.Record == nil || string(st.Record.Claims) != `{"org":"o2","orgRole":"owner"}` {
			t.Fatalf("after the switch: context %s, record %+v", st.Context, st.Record)
		}
		// A refresh keeps the context and drops the result.
		if err := cs.RefreshClaims(ctx, sess.UserID, keep); err != nil {
			t.Fatal(err)
		}
		if st := load(t, cs, sess); string(st.Context) != `{"org":"o2"}` || st.Record != nil {
			t.Fatalf("after a refresh: context %s, record %+v", st.Context, st.Record)
		}
		// A switch whose call began before that refresh keeps the context
		// but not its result.
		stale := ClaimsRecord{Claims: []byte(`{"org":"o3"}`), FetchedAt: clock.Now(), Generation: 0}
		if err := cs.SetClaimsContext(ctx, sess.UserID, sess.ID, []byte(`{"org":"o3"}`), sess.ExpiresAt, stale, keep); err != nil {
			t.Fatal(err)
		}
		if st := load(t, cs, sess); string(st.Context) != `{"org":"o3"}` || st.Record != nil {
			t.Fatalf("after a switch that raced a refresh: context %s, record %+v", st.Context, st.Record)
		}
	})

	t.Run("an ended session has no claims state", func(t *testing.T) {
		s, cs, clock := setup(t)
		sess := newSession(t, s, "u1")
		if _, err := cs.SaveClaims(ctx, sess.UserID, sess.ID, ClaimsRecord{Claims: []byte(`{"a":1}`), FetchedAt: clock.Now()}, keep); err != nil {
			t.Fatal(err)
		}
		if err := cs.SetClaimsContext(ctx, sess.UserID, sess.ID, []byte(`{"org":"o1"}`), sess.ExpiresAt, ClaimsRecord{Claims: []byte(`{}`), FetchedAt: clock.Now()}, keep); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteByID(ctx, sess.UserID, sess.ID); err != nil {
			t.Fatal(err)
		}
		if st := load(t, cs, sess); st.Record != nil || st.Context != nil {
			t.Fatalf("after the session ended: %+v", st)
		}
		// Nor does another user asking with its ID.
		if st, err := cs.LoadClaims(ctx, "u2", newSession(t, s, "u1").ID); err != nil || st.Record != nil || st.Context != nil {
			t.Fatalf("another user's session: %+v, %v", st, err)
		}
	})

	t.Run("a result is kept for keep", func(t *testing.T) {
		s, cs, clock := setup(t)
		sess := newSession(t, s, "u1")
		if _, err := cs.SaveClaims(ctx, sess.UserID, sess.ID, ClaimsRecord{Claims: []byte(`{"a":1}`), FetchedAt: clock.Now()}, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		waitFor(t, 5*time.Second, "the result to expire", func() bool { return load(t, cs, sess).Record == nil })
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		s, cs, clock := setup(t)
		sess := newSession(t, s, "u1")
		rec := ClaimsRecord{Claims: []byte(`{}`), FetchedAt: clock.Now()}
		for name, err := range map[string]error{
			"empty user":       func() error { _, err := cs.LoadClaims(ctx, "", sess.ID); return err }(),
			"bad session ID":   func() error { _, err := cs.SaveClaims(ctx, "u1", "x", rec, keep); return err }(),
			"context too big":  cs.SetClaimsContext(ctx, "u1", sess.ID, []byte(`{"org":"`+strings.Repeat("x", MaxClaimsContextBytes)+`"}`), sess.ExpiresAt, rec, keep),
			"context not JSON": cs.SetClaimsContext(ctx, "u1", sess.ID, []byte(`{org`), sess.ExpiresAt, rec, keep),
		} {
			if !errors.Is(err, ErrInvalidClaims) {
				t.Errorf("%s: %v; want ErrInvalidClaims", name, err)
			}
		}
		if st := load(t, cs, sess); st.Context != nil || st.Record != nil {
			t.Fatalf("bad input left %+v", st)
		}
	})
}
