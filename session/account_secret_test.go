package session

import (
	"context"
	"errors"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

func runAccountSecretConformance(t *testing.T, s Store) {
	ctx := context.Background()
	us := s.(UserStore)
	set := s.(AccountSecretSetter)
	if err := us.CreateAccount(ctx, Account{Provider: "password", ProviderAccountID: "ada@example.com", UserID: "u1", Secret: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := set.SetAccountSecret(ctx, "password", "ada@example.com", "u2", "stolen"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another user's account: %v; want ErrNotFound", err)
	}
	if err := set.SetAccountSecret(ctx, "password", "nobody@example.com", "u1", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unbound account: %v; want ErrNotFound", err)
	}
	if _, err := us.GetAccount(ctx, "password", "nobody@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused set created the account: %v", err)
	}
	if err := set.SetAccountSecret(ctx, "password", "ada@example.com", "u1", "new"); err != nil {
		t.Fatal(err)
	}
	a, err := us.GetAccount(ctx, "password", "ada@example.com")
	if err != nil || a.Secret != "new" || a.UserID != "u1" {
		t.Fatalf("after the set: %+v, %v; want secret new, user u1", a, err)
	}
	if err := set.SetAccountSecret(ctx, "password", "ada@example.com", "u1", string(make([]byte, MaxSecretBytes+1))); !errors.Is(err, ErrInvalidUser) {
		t.Fatalf("oversized secret: %v; want ErrInvalidUser", err)
	}
}

func TestMemorySetAccountSecret(t *testing.T) {
	m := NewMemoryStore(Options{})
	t.Cleanup(func() { _ = m.Close() })
	runAccountSecretConformance(t, m)
}

func TestRedisSetAccountSecret(t *testing.T) {
	srv := redistest.StartServer(t)
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), -1, Options{})
	runAccountSecretConformance(t, s)
}
