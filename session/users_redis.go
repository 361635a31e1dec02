package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Every call retries through a failover within the caller's deadline
// (redis_durable.go).
//
// Redis layout of users (see redis.go for sessions). Every step touches one
// key, so each is atomic on Cluster without hash tags; the user record still
// carries the user's tag so that it lives on the slot of its sessions.
//
//	<prefix>{<usertag>}:user:<userID>  string, JSON user record
//	<prefix>email:<hash>               string, user ID of the verified email
//	<prefix>acct:<hash>                string, JSON account record
//	<prefix>{<usertag>}:accts:<hash>   sorted set, the user's accounts as
//	                                   JSON [provider, account ID] (score 0);
//	                                   <hash> of the realm's tag and user ID.
//	                                   An index: the account records decide
//	<prefix>once:<hash>                string, 13-digit expiry ms, realm tag,
//	                                   value
//	<prefix>{<usertag>}:pending:<hash> sorted set, the <hash> parts of the
//	                                   user's single-use keys (PutOnceFor),
//	                                   scored by expiry ms; <hash> of the
//	                                   realm's tag and user ID. Expired
//	                                   entries are pruned on write, and the
//	                                   key expires with its last entry
//	<prefix>rate:<hash>                string, "<count>:<window start ms>"
//	<prefix>{<usertag>}:devices:<hash> sorted set, the user's remembered
//	                                   browsers (devices.go)
//
// <hash> is a SHA-256 of the realm's tag and the email, provider and account
// ID, single-use secret or rate key: no key names an email, a subject or a
// secret, and realms sharing a prefix never share a key. User and account
// records carry the realm's tag too, checked on every read.

// onceExpiryDigits is the fixed-width expiry in front of a single-use value.
const onceExpiryDigits = 13

var _ UserStore = (*RedisStore)(nil)

type userRecord struct {
	Realm         string `json:"r"`
	ID            string `json:"id"`
	CreatedAt     int64  `json:"c"`
	Email         string `json:"e,omitempty"`
	EmailVerified bool   `json:"ev,omitempty"`
	Name          string `json:"n,omitempty"`
	Picture       string `json:"p,omitempty"`
	Anonymous     bool   `json:"g,omitempty"`
	// ExpiresAt (Unix ms, guests only) is checked on read by the store's
	// clock; the key's TTL lets Redis drop it too.
	ExpiresAt int64 `json:"x,omitempty"`
	// Banned and BannedAt (Unix ms) are written by SetBanned only
	// (setBannedScript); UpdateUser keeps them as stored.
	Banned   bool  `json:"b,omitempty"`
	BannedAt int64 `json:"ba,omitempty"`
}

// encodeUser makes the stored record; expiresAt zero means none.
func encodeUser(u *User, realmTag string, expiresAt time.Time) ([]byte, error) {
	r := userRecord{
		Realm: realmTag, ID: u.ID, CreatedAt: u.CreatedAt.UnixMilli(),
		Email: u.Profile.Email, EmailVerified: u.Profile.EmailVerified,
		Name: u.Profile.Name, Picture: u.Profile.Picture, Anonymous: u.Anonymous,
	}
	if !expiresAt.IsZero() {
		r.ExpiresAt = expiresAt.UnixMilli()
	}
	return json.Marshal(r)
}

// decodeUser parses a stored user of the realm; a user past its expiry at
// now is not found.
func decodeUser(raw []byte, realmTag string, now time.Time) (*User, error) {
	var r userRecord
	if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
		return nil, ErrNotFound // a corrupt record is no user
	}
	if r.Realm != realmTag {
		return nil, errForeignRecord
	}
	if r.ExpiresAt != 0 && now.UnixMilli() >= r.ExpiresAt {
		return nil, ErrNotFound
	}
	u := &User{
		ID:        r.ID,
		CreatedAt: time.UnixMilli(r.CreatedAt).UTC(),
		Profile:   Profile{Email: r.Email, EmailVerified: r.EmailVerified, Name: r.Name, Picture: r.Picture},
		Anonymous: r.Anonymous,
		Banned:    r.Banned,
	}
	if r.Banned && r.BannedAt != 0 {
		u.BannedAt = time.UnixMilli(r.BannedAt).UTC()
	}
	return u, nil
}

type accountRecord struct {
	Realm             string `json:"r"`
	Provider          string `json:"p"`
	ProviderAccountID string `json:"a"`
	UserID            string `json:"u"`
	Secret            string `json:"s,omitempty"`
}

func (s *RedisStore) userKey(userID string) string {
	return s.prefix + "{" + userTag(userID) + "}:user:" + userID
}

func (s *RedisStore) accountsKey(userID string) string {
	return s.prefix + "{" + userTag(userID) + "}:accts:" + hashKey(s.realmTag, userID)
}

func (s *RedisStore) emailKey(email string) string {
	return s.prefix + "email:" + hashKey(s.realmTag, email)
}

func (s *RedisStore) accountKey(provider, providerAccountID string) string {
	return s.prefix + "acct:" + hashKey(s.realmTag, provider, providerAccountID)
}

func (s *RedisStore) onceKey(secret string) string {
	return s.onceKeyOf(s.onceID(secret))
}

// onceID is the hash part of a single-use key: what the user's pending
// index holds.
func (s *RedisStore) onceID(secret string) string {
	return hashKey("once", s.realmTag, secret)
}

func (s *RedisStore) onceKeyOf(id string) string {
	return s.prefix + "once:" + id
}

func (s *RedisStore) pendingKey(userID string) string {
	return s.prefix + "{" + userTag(userID) + "}:pending:" + hashKey("pending", s.realmTag, userID)
}

func (s *RedisStore) rateKey(key string) string {
	return s.prefix + "rate:" + hashKey("rate", s.realmTag, key)
}

// CreateUser implements UserStore.
func (s *RedisStore) CreateUser(ctx context.Context, n NewUser) (*User, error) {
	n.Profile.Email = NormalizeEmail(n.Profile.Email)
	if err := validateProfile(n.Profile); err != nil {
		return nil, err
	}
	id, err := newUserID()
	if err != nil {
		return nil, err
	}
	user := &User{ID: id, CreatedAt: s.opts.now(), Profile: n.Profile, Anonymous: n.Anonymous}
	ok, err := s.putNewUser(ctx, user, n.TTL)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, unavailable("create user", errors.New("a random user ID repeated"))
	}
	return user, nil
}

// insertUser stores an imported user under its own ID unless a record of
// that ID exists (false).
func (s *RedisStore) insertUser(ctx context.Context, u *User) (bool, error) {
	return s.putNewUser(ctx, u, 0)
}

// putNewUser writes u's record unless one of its ID exists (false), with
// an expiry ttl from its creation when positive, and indexes its verified
// email.
func (s *RedisStore) putNewUser(ctx context.Context, u *User, ttl time.Duration) (bool, error) {
	var expires time.Time
	if ttl > 0 {
		expires = u.CreatedAt.Add(ttl)
	}
	rec, err := encodeUser(u, s.realmTag, expires)
	if err != nil {
		return false, err
	}
	ok, err := s.setNXRetriedTTL(ctx, s.userKey(u.ID), rec, ttl)
	if err != nil {
		return false, unavailable("create user", err)
	}
	if !ok {
		return false, nil
	}
	return true, s.indexEmail(ctx, u)
}

// indexEmail points the verified email at the user unless another user
// holds it.
func (s *RedisStore) indexEmail(ctx context.Context, u *User) error {
	if u.Profile.Email == "" || !u.Profile.EmailVerified {
		return nil
	}
	if _, err := s.setNXRetried(ctx, s.emailKey(u.Profile.Email), []byte(u.ID)); err != nil {
		return unavailable("index email", err)
	}
	return nil
}

// GetUser implements UserStore.
func (s *RedisStore) GetUser(ctx context.Context, userID string) (*User, error) {
	u, _, err := s.getUser(ctx, userID)
	return u, err
}

// getUser also returns the stored expiry (zero: none).
func (s *RedisStore) getUser(ctx context.Context, userID string) (*User, time.Time, error) {
	if userID == "" || len(userID) > MaxUserIDBytes {
		return nil, time.Time{}, ErrNotFound
	}
	raw, err := retried(ctx, s, func(ctx context.Context, _ int) ([]byte, error) {
		return s.client.Get(ctx, s.userKey(userID)).Bytes()
	})
	if errors.Is(err, redis.Nil) {
		return nil, time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, time.Time{}, unavailable("get user", err)
	}
	u, err := decodeUser(raw, s.realmTag, s.opts.now())
	if err != nil || u.ID != userID {
		return nil, time.Time{}, ErrNotFound
	}
	var r userRecord
	_ = json.Unmarshal(raw, &r) // decoded above
	var expires time.Time
	if r.ExpiresAt != 0 {
		expires = time.UnixMilli(r.ExpiresAt)
	}
	return u, expires, nil
}

// TouchUser implements UserStore. Only a guest's expiry moves; the record
// is swapped only if unchanged since it was read, so a touch racing an
// upgrade cannot undo it.
func (s *RedisStore) TouchUser(ctx context.Context, userID string, ttl time.Duration) error {
	for range maxDeleteUserAttempts {
		raw, err := retried(ctx, s, func(ctx context.Context, _ int) (string, error) {
			return s.client.Get(ctx, s.userKey(userID)).Result()
		})
		if errors.Is(err, redis.Nil) {
			return ErrNotFound
		}
		if err != nil {
			return unavailable("touch user", err)
		}
		u, err := decodeUser([]byte(raw), s.realmTag, s.opts.now())
		if err != nil || u.ID != userID {
			return ErrNotFound
		}
		if !u.Anonymous || ttl <= 0 {
			return nil
		}
		rec, err := encodeUser(u, s.realmTag, s.opts.now().Add(ttl))
		if err != nil {
			return err
		}
		n, err := retried(ctx, s, func(ctx context.Context, _ int) (int, error) {
			return swapScript.Run(ctx, s.client, []string{s.userKey(userID)}, raw, rec, max(ttl.Milliseconds(), 1)).Int()
		})
		if err != nil {
			return unavailable("touch user", err)
		}
		if n == 1 {
			return nil
		}
	}
	return unavailable("touch user", errors.New("the user record kept changing; try again"))
}

// UpdateUser implements UserStore. The stored creation time is kept.
func (s *RedisStore) UpdateUser(ctx context.Context, user *User) error {
	p := user.Profile
	p.Email = NormalizeEmail(p.Email)
	if err := validateProfile(p); err != nil {
		return err
	}
	old, expires, err := s.getUser(ctx, user.ID)
	if err != nil {
		return err
	}
	updated := &User{ID: old.ID, CreatedAt: old.CreatedAt, Profile: p, Anonymous: user.Anonymous}
	// A guest keeps its expiry; anyone else has none (SET without KEEPTTL
	// clears the key's TTL).
	ttl := time.Duration(0)
	if !updated.Anonymous {
		expires = time.Time{}
	} else if !expires.IsZero() {
		ttl = redis.KeepTTL
	}
	rec, err := encodeUser(updated, s.realmTag, expires)
	if err != nil {
		return err
	}
	keep := "0"
	if ttl == redis.KeepTTL {
		keep = "1"
	}
	// The record is written without the ban fields; the script copies
	// them from the stored one, so a ban set meanwhile is not undone.
	ok, err := retried(ctx, s, func(ctx context.Context, _ int) (bool, error) {
		n, err := updateUserScript.Run(ctx, s.client, []string{s.userKey(user.ID)}, rec, keep).Int()
		return n == 1, err
	})
	if err != nil {
		return unavailable("update user", err)
	}
	if !ok {
		return ErrNotFound
	}
	return s.indexEmail(ctx, updated)
}

// RemoveUser implements UserStore.
func (s *RedisStore) RemoveUser(ctx context.Context, userID string) error {
	u, err := s.GetUser(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error { return s.client.Del(ctx, s.userKey(userID)).Err() }); err != nil {
		return unavailable("remove user", err)
	}
	if u.Profile.Email != "" {
		// Only if it still points at this user.
		err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
			return delIfEqualScript.Run(ctx, s.client, []string{s.emailKey(u.Profile.Email)}, userID).Err()
		})
		if err != nil {
			return unavailable("remove user", err)
		}
	}
	return nil
}

// UserByEmail implements UserStore.
func (s *RedisStore) UserByEmail(ctx context.Context, email string) (*User, error) {
	email = NormalizeEmail(email)
	if email == "" || len(email) > MaxEmailBytes {
		return nil, ErrNotFound
	}
	id, err := retried(ctx, s, func(ctx context.Context, _ int) (string, error) {
		return s.client.Get(ctx, s.emailKey(email)).Result()
	})
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("user by email", err)
	}
	u, err := s.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	// The index may be stale: the record decides.
	if u.Profile.Email != email || !u.Profile.EmailVerified {
		return nil, ErrNotFound
	}
	return u, nil
}

// CreateAccount implements UserStore.
func (s *RedisStore) CreateAccount(ctx context.Context, a Account) error {
	if err := a.validate(); err != nil {
		return err
	}
	rec, err := json.Marshal(accountRecord{
		Realm: s.realmTag, Provider: a.Provider, ProviderAccountID: a.ProviderAccountID,
		UserID: a.UserID, Secret: a.Secret,
	})
	if err != nil {
		return err
	}
	// The index entry goes first: an entry without its account is
	// skipped by AccountsOf, an account missing from the index would be
	// lost to it.
	member := accountMember(a.Provider, a.ProviderAccountID)
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.client.ZAdd(ctx, s.accountsKey(a.UserID), redis.Z{Member: member}).Err()
	}); err != nil {
		return unavailable("create account", err)
	}
	ok, err := s.setNXRetried(ctx, s.accountKey(a.Provider, a.ProviderAccountID), rec)
	if err != nil {
		return unavailable("create account", err)
	}
	if !ok {
		if cur, err := s.GetAccount(ctx, a.Provider, a.ProviderAccountID); err == nil && cur.UserID != a.UserID {
			_ = s.client.ZRem(ctx, s.accountsKey(a.UserID), member).Err() // best effort: AccountsOf checks
		}
		return ErrAccountExists
	}
	return nil
}

func accountMember(provider, providerAccountID string) string {
	b, _ := json.Marshal([2]string{provider, providerAccountID})
	return string(b)
}

// AccountsOf implements UserStore.
func (s *RedisStore) AccountsOf(ctx context.Context, userID string) ([]Account, error) {
	out := []Account{}
	if userID == "" || len(userID) > MaxUserIDBytes {
		return out, nil
	}
	members, err := retried(ctx, s, func(ctx context.Context, _ int) ([]string, error) {
		return s.client.ZRange(ctx, s.accountsKey(userID), 0, -1).Result()
	})
	if err != nil {
		return nil, unavailable("accounts of", err)
	}
	for _, m := range members {
		var pa [2]string
		if json.Unmarshal([]byte(m), &pa) != nil {
			continue
		}
		a, err := s.GetAccount(ctx, pa[0], pa[1])
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if a.UserID == userID {
			out = append(out, *a)
		}
	}
	sortAccounts(out)
	return out, nil
}

// DeleteAccount implements UserStore.
func (s *RedisStore) DeleteAccount(ctx context.Context, provider, providerAccountID string) error {
	if provider == "" || providerAccountID == "" {
		return ErrNotFound
	}
	key := s.accountKey(provider, providerAccountID)
	raw, err := retried(ctx, s, func(ctx context.Context, _ int) (string, error) {
		return s.client.Get(ctx, key).Result()
	})
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return unavailable("delete account", err)
	}
	a, err := s.decodeAccount([]byte(raw), provider, providerAccountID)
	if err != nil {
		return err
	}
	var n int
	if err := s.retryWrite(ctx, func(ctx context.Context, attempt int) error {
		var err error
		n, err = delIfEqualScript.Run(ctx, s.client, []string{key}, raw).Int()
		if err == nil && n == 0 && attempt > 0 {
			n = 1 // an earlier attempt may have deleted it before failing
		}
		return err
	}); err != nil {
		return unavailable("delete account", err)
	}
	if n == 0 {
		return ErrNotFound // changed meanwhile
	}
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.client.ZRem(ctx, s.accountsKey(a.UserID), accountMember(provider, providerAccountID)).Err()
	}); err != nil {
		return unavailable("delete account", err)
	}
	return nil
}

// PurgeUser implements UserStore. Each step is one key or one user's
// sessions; the record goes last, so a purge cut short can be run again.
func (s *RedisStore) PurgeUser(ctx context.Context, userID string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if u.Profile.Email != "" {
		if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
			return delIfEqualScript.Run(ctx, s.client, []string{s.emailKey(u.Profile.Email)}, userID).Err()
		}); err != nil {
			return unavailable("purge user", err)
		}
	}
	accounts, err := s.AccountsOf(ctx, userID)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if err := s.DeleteAccount(ctx, a.Provider, a.ProviderAccountID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error { return s.client.Del(ctx, s.accountsKey(userID)).Err() }); err != nil {
		return unavailable("purge user", err)
	}
	if err := s.dropPending(ctx, userID); err != nil {
		return err
	}
	if err := s.ResetFactors(ctx, userID); err != nil {
		return err
	}
	if err := s.ForgetDevices(ctx, userID); err != nil {
		return err
	}
	if _, err := s.DeleteUser(ctx, userID, ""); err != nil {
		return err
	}
	if err := s.RemoveUser(ctx, userID); err != nil {
		return err
	}
	// Again, now that the record is gone: a PutOnceFor that checked the
	// user before that indexed its value before this read.
	return s.dropPending(ctx, userID)
}

// dropPending deletes the single-use values in the user's pending index,
// then their entries (the key goes with the last one). Each step is one
// key; only entries read here are removed, so one indexed meanwhile stays
// for the next drop.
func (s *RedisStore) dropPending(ctx context.Context, userID string) error {
	key := s.pendingKey(userID)
	ids, err := retried(ctx, s, func(ctx context.Context, _ int) ([]string, error) {
		return s.client.ZRange(ctx, key, 0, -1).Result()
	})
	if err != nil {
		return unavailable("purge pending values", err)
	}
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error { return s.client.Del(ctx, s.onceKeyOf(id)).Err() }); err != nil {
			return unavailable("purge pending values", err)
		}
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error { return s.client.ZRem(ctx, key, members...).Err() }); err != nil {
		return unavailable("purge pending values", err)
	}
	return nil
}

// GetAccount implements UserStore.
func (s *RedisStore) GetAccount(ctx context.Context, provider, providerAccountID string) (*Account, error) {
	if provider == "" || providerAccountID == "" {
		return nil, ErrNotFound
	}
	raw, err := retried(ctx, s, func(ctx context.Context, _ int) ([]byte, error) {
		return s.client.Get(ctx, s.accountKey(provider, providerAccountID)).Bytes()
	})
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get account", err)
	}
	return s.decodeAccount(raw, provider, providerAccountID)
}

func (s *RedisStore) decodeAccount(raw []byte, provider, providerAccountID string) (*Account, error) {
	var r accountRecord
	if err := json.Unmarshal(raw, &r); err != nil || r.Provider != provider || r.ProviderAccountID != providerAccountID {
		return nil, ErrNotFound
	}
	if r.Realm != s.realmTag {
		return nil, errForeignRecord
	}
	return &Account{Provider: r.Provider, ProviderAccountID: r.ProviderAccountID, UserID: r.UserID, Secret: r.Secret}, nil
}

// PutOnce implements UserStore. Expiry is kept in the value, by the store's
// clock, and as the key's TTL so that Redis drops it.
func (s *RedisStore) PutOnce(ctx context.Context, secret string, value []byte, ttl time.Duration) error {
	if err := validateOnce(secret, value, ttl); err != nil {
		return err
	}
	return s.putOnce(ctx, secret, value, ttl, s.opts.now().Add(ttl).UnixMilli(), "put once")
}

func (s *RedisStore) putOnce(ctx context.Context, secret string, value []byte, ttl time.Duration, exp int64, op string) error {
	rec := make([]byte, 0, onceExpiryDigits+len(s.realmTag)+len(value))
	rec = fmt.Appendf(rec, "%0*d", onceExpiryDigits, exp)
	rec = append(rec, s.realmTag...)
	rec = append(rec, value...)
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error { return s.client.Set(ctx, s.onceKey(secret), rec, ttl).Err() }); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// PutOnceFor implements UserStore. The index entry goes first and the user
// is checked last: PurgeUser drops the index after removing the record, so
// either it finds the entry or this finds no user and undoes the write.
// Three round trips, the value's key on its own slot as PutOnce's.
func (s *RedisStore) PutOnceFor(ctx context.Context, userID, secret string, value []byte, ttl time.Duration) error {
	if err := validateOnce(secret, value, ttl); err != nil {
		return err
	}
	if err := validateOwner(userID); err != nil {
		return err
	}
	now := s.opts.now()
	exp := now.Add(ttl).UnixMilli()
	key, id := s.pendingKey(userID), s.onceID(secret)
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return putPendingScript.Run(ctx, s.client, []string{key}, now.UnixMilli(), exp, id).Err()
	}); err != nil {
		return unavailable("put once for user", err)
	}
	if err := s.putOnce(ctx, secret, value, ttl, exp, "put once for user"); err != nil {
		return err
	}
	_, err := s.GetUser(ctx, userID)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotFound) {
		return err // the value stays, indexed: a purge finds it
	}
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		if err := s.client.Del(ctx, s.onceKeyOf(id)).Err(); err != nil {
			return err
		}
		return s.client.ZRem(ctx, key, id).Err()
	}); err != nil {
		return unavailable("put once for user", err)
	}
	return ErrNotFound
}

// TakeOnce implements UserStore: GET and DEL in one script, so that two
// concurrent takes cannot both succeed.
func (s *RedisStore) TakeOnce(ctx context.Context, secret string) ([]byte, error) {
	if secret == "" {
		return nil, ErrNotFound
	}
	// A retry after a lost reply finds the value taken: that sign-in
	// step fails and starts again.
	raw, err := retried(ctx, s, func(ctx context.Context, _ int) (string, error) {
		return takeOnceScript.Run(ctx, s.client, []string{s.onceKey(secret)}).Text()
	})
	return s.onceValue(raw, err, "take once")
}

// PeekOnce implements UserStore.
func (s *RedisStore) PeekOnce(ctx context.Context, secret string) ([]byte, error) {
	if secret == "" {
		return nil, ErrNotFound
	}
	raw, err := retried(ctx, s, func(ctx context.Context, _ int) (string, error) {
		return s.client.Get(ctx, s.onceKey(secret)).Result()
	})
	return s.onceValue(raw, err, "peek once")
}

// onceValue checks a stored single-use record's expiry and strips it.
func (s *RedisStore) onceValue(raw string, err error, op string) ([]byte, error) {
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable(op, err)
	}
	head := onceExpiryDigits + len(s.realmTag)
	if len(raw) < head {
		return nil, ErrNotFound
	}
	if raw[onceExpiryDigits:head] != s.realmTag {
		return nil, errForeignRecord
	}
	exp, err := strconv.ParseInt(raw[:onceExpiryDigits], 10, 64)
	if err != nil || s.opts.now().UnixMilli() >= exp {
		return nil, ErrNotFound
	}
	return []byte(raw[head:]), nil
}

// RateHit implements UserStore.
func (s *RedisStore) RateHit(ctx context.Context, key string, limit int, window time.Duration) (bool, error) {
	if err := validateRate(key, limit, window); err != nil {
		return false, err
	}
	// A retry after a lost reply may count one event twice: the strict side.
	n, err := retried(ctx, s, func(ctx context.Context, _ int) (int, error) {
		return rateHitScript.Run(ctx, s.client, []string{s.rateKey(key)},
			s.opts.now().UnixMilli(), window.Milliseconds(), limit).Int()
	})
	if err != nil {
		return false, unavailable("rate hit", err)
	}
	return n <= limit, nil
}

// RateReset implements UserStore.
func (s *RedisStore) RateReset(ctx context.Context, key string) error {
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error { return s.client.Del(ctx, s.rateKey(key)).Err() }); err != nil {
		return unavailable("rate reset", err)
	}
	return nil
}

// takeOnceScript returns the value and deletes it. KEYS[1] the once key.
var takeOnceScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('DEL', KEYS[1])
return v
`)

// putPendingScript indexes a single-use value under its user: it prunes
// the entries expired at now, adds ARGV[3] scored by its expiry, and lets
// the key expire with its last entry, so the index outlives no value.
//
// KEYS[1] pending index. ARGV: now ms, expiry ms, the value's key hash.
var putPendingScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(last[2]) - now, 1))
return 1
`)

// swapScript replaces the key's value with ARGV[2], expiring in ARGV[3] ms,
// if it still holds ARGV[1]; returns 1 if it did.
var swapScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// updateUserScript replaces an existing user record with ARGV[1], keeping
// the stored record's ban fields; 0 if there is no record. ARGV[2] "1"
// keeps the key's TTL.
var updateUserScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local rec = ARGV[1]
local ok, c = pcall(cjson.decode, cur)
if ok and type(c) == 'table' and c.b then
  local n = cjson.decode(rec)
  n.b = c.b
  n.ba = c.ba
  rec = cjson.encode(n)
end
if ARGV[2] == '1' then
  redis.call('SET', KEYS[1], rec, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], rec)
end
return 1
`)

// delIfEqualScript deletes the key if it holds ARGV[1].
var delIfEqualScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// rateHitScript counts one event in a fixed window that starts at its first
// event, by the caller's clock, and returns the count. Counting stops one
// past the limit, so a flood cannot grow the number.
//
// KEYS[1] rate key. ARGV: now ms, window ms, limit.
var rateHitScript = redis.NewScript(`
local now, win, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local count, start = 0, now
local v = redis.call('GET', KEYS[1])
if v then
  local c, st = string.match(v, '^(%d+):(%d+)$')
  if c and now < tonumber(st) + win then
    count, start = tonumber(c), tonumber(st)
  end
end
if count <= limit then count = count + 1 end
redis.call('SET', KEYS[1], count .. ':' .. start, 'PX', math.max(start + win - now, 1))
return count
`)
