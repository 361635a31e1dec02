package session

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// runReauthConformance: a session's authentication time is its creation
// until Reauthenticate moves it, in place (same token, same ID), for that
// user's live session only; the change survives touches and is announced.
func runReauthConformance(t *testing.T, backend conformanceBackend) {
	ctx := context.Background()
	clock := newFakeClock()
	s, _ := backend(t, Options{SessionTTL: confSessionTTL, IdleTTL: confIdleTTL, TouchInterval: confTouchInterval, Now: clock.Now})
	t.Cleanup(func() { _ = s.Close() })
	revoked := watchRevocations(s)

	tok, created, err := s.Create(ctx, NewSession{UserID: "reauth-user", Provider: "github", Profile: testProfile(), UserAgent: "UA"})
	if err != nil {
		t.Fatal(err)
	}
	if !created.AuthTime.Equal(created.CreatedAt) || len(created.AMR) != 0 {
		t.Fatalf("a new session's authentication: %v %v; want its creation and no methods", created.AuthTime, created.AMR)
	}
	clock.Advance(10 * time.Minute)
	if got, _ := s.Lookup(ctx, tok); got.Recent(clock.Now(), 5*time.Minute) {
		t.Fatal("a sign-in 10 minutes old is recent within 5 minutes")
	}
	at := clock.Now()
	if err := s.Reauthenticate(ctx, "reauth-user", created.ID, at, []string{"pwd"}); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		got, err := s.Lookup(ctx, tok)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got.ID != created.ID || !got.CreatedAt.Equal(created.CreatedAt) || got.UserAgent != "UA" || got.Profile != testProfile() {
			t.Fatalf("%s: the session changed beyond its authentication: %+v", what, got)
		}
		if !got.AuthTime.Equal(at) || !reflect.DeepEqual(got.AMR, []string{"pwd"}) || !got.Recent(clock.Now(), 5*time.Minute) {
			t.Fatalf("%s: authentication %v %v; want %v [pwd], recent", what, got.AuthTime, got.AMR, at)
		}
	}
	check("after Reauthenticate")
	if !revoked.has(created.ID) {
		t.Error("Reauthenticate did not tell the OnRevoke hooks (cached tokens carry the old auth_time)")
	}
	clock.Advance(2 * confTouchInterval)
	check("after a touch")
	settleTouches(t, s)
	clock.Advance(2 * confTouchInterval)
	check("after another touch")
	list, err := s.List(ctx, "reauth-user")
	if err != nil || len(list) != 1 || !list[0].AuthTime.Equal(at) {
		t.Fatalf("List = %v, %v; want the session with its new authentication", list, err)
	}

	for name, call := range map[string]func() error{
		"another user's": func() error { return s.Reauthenticate(ctx, "someone-else", created.ID, at, nil) },
		"an unknown ID":  func() error { return s.Reauthenticate(ctx, "reauth-user", "AAAAAAAAAAAAAAAAAAAAAA", at, nil) },
		"a malformed ID": func() error { return s.Reauthenticate(ctx, "reauth-user", "x", at, nil) },
		"an empty user":  func() error { return s.Reauthenticate(ctx, "", created.ID, at, nil) },
	} {
		if err := call(); !errors.Is(err, ErrNotFound) {
			t.Errorf("Reauthenticate of %s session: %v; want ErrNotFound", name, err)
		}
	}
	for _, bad := range [][]string{{""}, {"PWD"}, {"p w"}, slices.Repeat([]string{"otp"}, MaxAMRValues+1)} {
		if err := s.Reauthenticate(ctx, "reauth-user", created.ID, at, bad); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("Reauthenticate with methods %q: %v; want ErrInvalidSession", bad, err)
		}
	}
	if _, _, err := s.Create(ctx, NewSession{UserID: "u", AMR: []string{"Bad!"}}); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("Create with a bad method: %v; want ErrInvalidSession", err)
	}
	tok2, withAMR, err := s.Create(ctx, NewSession{UserID: "reauth-user", AMR: []string{"pwd", "otp"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup(ctx, tok2); err != nil || !reflect.DeepEqual(got.AMR, []string{"pwd", "otp"}) || !got.AuthTime.Equal(withAMR.CreatedAt) {
		t.Fatalf("a session created with methods reads back as %+v, %v", got, err)
	}
	if err := s.Delete(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if err := s.Reauthenticate(ctx, "reauth-user", withAMR.ID, at, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Reauthenticate of a deleted session: %v; want ErrNotFound", err)
	}
	clock.Advance(confIdleTTL)
	if err := s.Reauthenticate(ctx, "reauth-user", created.ID, clock.Now(), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Reauthenticate of an idle-expired session: %v; want ErrNotFound", err)
	}
}

// runCapConformance: a user has at most MaxSessionsPerUser sessions; a new
// one past the cap ends the least recently used (announced, and returned
// by CreateEvicting); the list reads at most the cap.
func runCapConformance(t *testing.T, backend conformanceBackend) {
	ctx := context.Background()
	const limit = 3
	clock := newFakeClock()
	s, _ := backend(t, Options{SessionTTL: confSessionTTL, IdleTTL: confIdleTTL, TouchInterval: confTouchInterval, Now: clock.Now, MaxSessionsPerUser: limit})
	t.Cleanup(func() { _ = s.Close() })
	revoked := watchRevocations(s)
	ev, ok := s.(Evicting)
	if !ok {
		t.Fatal("the store does not report the sessions its cap ends (Evicting)")
	}
	tokens := make([]string, 0, limit+2)
	ids := make([]string, 0, limit+2)
	for i := range limit {
		tok, sess, evicted, err := ev.CreateEvicting(ctx, NewSession{UserID: "capped"})
		if err != nil || len(evicted) != 0 {
			t.Fatalf("session %d: %v, evicted %v", i, err, evicted)
		}
		tokens, ids = append(tokens, tok), append(ids, sess.ID)
		clock.Advance(time.Minute)
	}
	// Using the first makes the second the least recently used.
	clock.Advance(confTouchInterval)
	if _, err := s.Lookup(ctx, tokens[0]); err != nil {
		t.Fatal(err)
	}
	settleTouches(t, s)
	clock.Advance(time.Minute)
	tok, sess, evicted, err := ev.CreateEvicting(ctx, NewSession{UserID: "capped"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(evicted, []string{ids[1]}) {
		t.Fatalf("evicted %v; want the least recently used, %s", evicted, ids[1])
	}
	if _, err := s.Lookup(ctx, tokens[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the evicted session: %v; want ErrNotFound", err)
	}
	if !revoked.has(ids[1]) {
		t.Error("the evicted session was not announced to the OnRevoke hooks")
	}
	for _, i := range []int{0, 2} {
		if _, err := s.Lookup(ctx, tokens[i]); err != nil {
			t.Fatalf("session %d ended: %v", i, err)
		}
	}
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatalf("the new session: %v", err)
	}
	assertIDs(t, s, "capped", ids[0], ids[2], sess.ID)

	// Another user's sessions are not counted.
	for i := range limit + 1 {
		if _, _, evicted, err := ev.CreateEvicting(ctx, NewSession{UserID: fmt.Sprintf("other-%d", i)}); err != nil || len(evicted) != 0 {
			t.Fatalf("another user's session: %v, evicted %v", err, evicted)
		}
	}
	// An ended session is pruned, not evicted: it is not counted.
	clock.Advance(2 * confTouchInterval)
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	settleTouches(t, s)
	clock.Advance(confIdleTTL - 30*time.Second) // ids[0] and ids[2] idled out; the newest has 30s left
	_, _, evicted, err = ev.CreateEvicting(ctx, NewSession{UserID: "capped"})
	if err != nil || len(evicted) != 0 {
		t.Fatalf("with two of three sessions ended: %v, evicted %v; want none", err, evicted)
	}
	if list, err := s.List(ctx, "capped"); err != nil || len(list) != 2 {
		t.Fatalf("List = %d sessions, %v; want 2", len(list), err)
	}
}
