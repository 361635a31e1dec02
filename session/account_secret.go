package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// AccountSecretSetter replaces the secret (a password hash) of a bound
// account. Both stores implement it; it is an interface of its own so that
// UserStore stays what every store must offer.
type AccountSecretSetter interface {
	// SetAccountSecret replaces the secret of the account, which must be
	// bound to userID; ErrNotFound if it is not bound, or bound to another
	// user (a concurrent unlink and re-link must not get the new secret).
	SetAccountSecret(ctx context.Context, provider, providerAccountID, userID, secret string) error
}

var (
	_ AccountSecretSetter = (*MemoryStore)(nil)
	_ AccountSecretSetter = (*RedisStore)(nil)
)

// SetAccountSecret implements AccountSecretSetter.
func (m *MemoryStore) SetAccountSecret(ctx context.Context, provider, providerAccountID, userID, secret string) error {
	if err := (Account{Provider: provider, ProviderAccountID: providerAccountID, UserID: userID, Secret: secret}).validate(); err != nil {
		return err
	}
	if err := m.usersOpen("set account secret"); err != nil {
		return err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	a := u.accounts[hashKey(provider, providerAccountID)]
	if a == nil || a.UserID != userID {
		return ErrNotFound
	}
	c := *a
	c.Secret = secret
	u.accounts[hashKey(provider, providerAccountID)] = &c
	return nil
}

// SetAccountSecret implements AccountSecretSetter: read, check, then SET XX
// so that an account deleted meanwhile is not brought back.
func (s *RedisStore) SetAccountSecret(ctx context.Context, provider, providerAccountID, userID, secret string) error {
	if err := (Account{Provider: provider, ProviderAccountID: providerAccountID, UserID: userID, Secret: secret}).validate(); err != nil {
		return err
	}
	a, err := s.GetAccount(ctx, provider, providerAccountID)
	if err != nil {
		return err
	}
	if a.UserID != userID {
		return ErrNotFound
	}
	rec, err := json.Marshal(accountRecord{Realm: s.realmTag, Provider: provider, ProviderAccountID: providerAccountID, UserID: userID, Secret: secret})
	if err != nil {
		return fmt.Errorf("%w: encoding the account: %w", ErrUnavailable, err)
	}
	key := s.accountKey(provider, providerAccountID)
	err = s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.client.SetArgs(ctx, key, rec, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err()
	})
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return unavailable("set account secret", err)
	}
	return nil
}
