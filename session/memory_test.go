package session

import (
	"context"
	"testing"
	"time"
)

func TestMemoryConformance(t *testing.T) {
	runConformance(t, func(t *testing.T, opts Options) (Store, func() []string) {
		m := NewMemoryStore(opts)
		return m, func() []string {
			m.mu.Lock()
			defer m.mu.Unlock()
			var out []string
			for id, s := range m.sessions {
				out = append(out, id, s.ID, s.UserID, s.Provider, s.Profile.Email, s.Profile.Name, s.Profile.Picture)
			}
			for u, ids := range m.byUser {
				out = append(out, u)
				for id := range ids {
					out = append(out, id)
				}
			}
			return out
		}
	})
}

func TestMemorySweepRemovesExpired(t *testing.T) {
	clock := newFakeClock()
	m := NewMemoryStore(Options{IdleTTL: time.Hour, TouchInterval: time.Minute, Now: clock.Now})
	defer m.Close()
	ctx := context.Background()
	for range 3 {
		if _, _, err := m.Create(ctx, NewSession{UserID: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Hour)
	m.sweep()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sessions) != 0 || len(m.byUser) != 0 {
		t.Fatalf("after sweep: %d sessions, %d users; want none", len(m.sessions), len(m.byUser))
	}
}

func TestMemoryClosedIsUnavailable(t *testing.T) {
	m := NewMemoryStore(Options{})
	ctx := context.Background()
	tok, _, err := m.Create(ctx, NewSession{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(ctx, tok); !IsUnavailable(err) {
		t.Fatalf("Lookup after Close: %v; want unavailable", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestMemorySweepPurgesExpiredGuests(t *testing.T) {
	clock := newFakeClock()
	m := NewMemoryStore(Options{SessionTTL: 100 * time.Hour, IdleTTL: 100 * time.Hour, Now: clock.Now})
	defer m.Close()
	ctx := context.Background()
	guest, err := m.CreateUser(ctx, NewUser{Anonymous: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := m.CreateUser(ctx, NewUser{Anonymous: true, TTL: time.Hour})
	tok, _, _ := m.Create(ctx, NewSession{UserID: guest.ID, Provider: "anonymous"})
	keptTok, _, _ := m.Create(ctx, NewSession{UserID: kept.ID, Provider: "anonymous"})
	clock.Advance(50 * time.Minute)
	if err := m.TouchUser(ctx, kept.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Minute)
	m.sweepAll()
	if _, err := m.Lookup(ctx, tok); err == nil {
		t.Fatal("an expired guest's session outlived the sweep")
	}
	m.users.mu.Lock()
	_, left := m.users.users[guest.ID]
	m.users.mu.Unlock()
	if left {
		t.Fatal("the sweep left the expired guest's record")
	}
	if _, err := m.Lookup(ctx, keptTok); err != nil {
		t.Fatalf("a guest in use lost its session: %v", err)
	}
}
