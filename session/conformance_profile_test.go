package session

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// runProfileConformance: SetProfile gives every live session of the user
// the new profile in place (same token, ID, times and User-Agent; a touch
// meanwhile kept), announces each session it changed and no other, and
// refuses a profile over the limits.
func runProfileConformance(t *testing.T, backend conformanceBackend) {
	ctx := context.Background()
	clock := newFakeClock()
	s, _ := backend(t, Options{SessionTTL: confSessionTTL, IdleTTL: confIdleTTL, TouchInterval: confTouchInterval, Now: clock.Now})
	t.Cleanup(func() { _ = s.Close() })
	revoked := watchRevocations(s)

	old := testProfile()
	mk := func(userID, ua string) (string, *Session) {
		t.Helper()
		tok, sess, err := s.Create(ctx, NewSession{UserID: userID, Provider: "password", Profile: old, UserAgent: ua})
		if err != nil {
			t.Fatal(err)
		}
		return tok, sess
	}
	tokA1, a1 := mk("profile-user", "laptop")
	tokA2, a2 := mk("profile-user", "phone")
	tokGone, gone := mk("profile-user", "old")
	tokB, b := mk("someone-else", "laptop")
	if err := s.Delete(ctx, tokGone); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * confTouchInterval)
	touched, err := s.Lookup(ctx, tokA1) // moves A1's last use
	if err != nil {
		t.Fatal(err)
	}
	settleTouches(t, s)

	renamed := old
	renamed.Name = "Ada King, Countess of Lovelace 👩‍💻"
	n, err := s.SetProfile(ctx, "profile-user", renamed)
	if err != nil || n != 2 {
		t.Fatalf("SetProfile = %d, %v; want the user's 2 live sessions changed", n, err)
	}
	for _, c := range []struct {
		tok  string
		was  *Session
		ua   string
		last *Session
	}{{tokA1, a1, "laptop", touched}, {tokA2, a2, "phone", a2}} {
		got, err := s.Lookup(ctx, c.tok)
		if err != nil {
			t.Fatalf("Lookup after SetProfile: %v", err)
		}
		if got.Profile != renamed {
			t.Errorf("session %s carries %+v; want %+v", got.ID, got.Profile, renamed)
		}
		if got.ID != c.was.ID || !got.CreatedAt.Equal(c.was.CreatedAt) || !got.ExpiresAt.Equal(c.was.ExpiresAt) ||
			got.UserAgent != c.ua || got.Provider != "password" || got.LastUsedAt.Before(c.last.LastUsedAt) {
			t.Errorf("SetProfile changed more than the profile: %+v, was %+v", got, c.was)
		}
		if !revoked.has(c.was.ID) {
			t.Errorf("session %s changed without telling the OnRevoke hooks (its cached token carries the old name)", c.was.ID)
		}
	}
	if got, err := s.Lookup(ctx, tokB); err != nil || got.Profile != old || revoked.has(b.ID) {
		t.Fatalf("another user's session: %+v, %v, announced %v; want it untouched", got, err, revoked.has(b.ID))
	}
	if _, err := s.Lookup(ctx, tokGone); !errors.Is(err, ErrNotFound) || revoked.times(gone.ID) != 1 {
		t.Fatalf("a deleted session came back or was announced again: %v", err)
	}
	list, err := s.List(ctx, "profile-user")
	if err != nil || len(list) != 2 || list[0].Profile != renamed || list[1].Profile != renamed {
		t.Fatalf("List = %+v, %v; want both sessions with the new profile", list, err)
	}

	before := revoked.total()
	if n, err := s.SetProfile(ctx, "profile-user", renamed); err != nil || n != 0 || revoked.total() != before {
		t.Fatalf("setting the same profile again: %d, %v; want nothing changed or announced", n, err)
	}
	if n, err := s.SetProfile(ctx, "nobody", renamed); err != nil || n != 0 {
		t.Fatalf("SetProfile of a user without sessions = %d, %v; want 0", n, err)
	}
	long := renamed
	long.Name = strings.Repeat("n", MaxNameBytes+1)
	for what, call := range map[string]func() (int, error){
		"an overlong name": func() (int, error) { return s.SetProfile(ctx, "profile-user", long) },
		"no user":          func() (int, error) { return s.SetProfile(ctx, "", renamed) },
	} {
		if n, err := call(); !errors.Is(err, ErrInvalidSession) || n != 0 {
			t.Errorf("SetProfile with %s = %d, %v; want ErrInvalidSession", what, n, err)
		}
	}
	if got, _ := s.Lookup(ctx, tokA2); got.Profile != renamed {
		t.Fatalf("a refused SetProfile changed a session: %+v", got.Profile)
	}

	clock.Advance(confIdleTTL)
	if n, err := s.SetProfile(ctx, "profile-user", old); err != nil || n != 0 {
		t.Fatalf("SetProfile of idle-expired sessions = %d, %v; want 0", n, err)
	}
}

// times is how often id was announced.
func (l *revocationLog) times(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[id]
}

// total is how many announcements were made.
func (l *revocationLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.ids {
		n += c
	}
	return n
}
