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
