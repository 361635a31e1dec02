package session

import (
	"context"
	"errors"
	"sync"
	"time"
)

// memoryUsers holds MemoryStore's users, accounts, single-use values and
// rate counters. Single-use values and counters expire by the store's clock
// and are dropped on access and by the sweep.
type memoryUsers struct {
	mu       sync.Mutex
	users    map[string]*User     // by user ID
	expires  map[string]time.Time // user ID -> expiry, guests only
	byEmail  map[string]string    // hashKey(normalised email) -> user ID
	accounts map[string]*Account  // hashKey(provider, provider account ID)
	once     map[string]onceEntry
	// pending indexes the once keys of each user's values (PutOnceFor);
	// entries leave with their values.
	pending map[string]map[string]struct{}
	rates   map[string]rateEntry
	// devices: user ID -> hashKey("device", token) -> expiry (devices.go).
	devices map[string]map[string]time.Time
}

type onceEntry struct {
	value     []byte
	expiresAt time.Time
	owner     string // user ID; empty for PutOnce
}

type rateEntry struct {
	count int
	ends  time.Time
}

func newMemoryUsers() *memoryUsers {
	return &memoryUsers{
		users:    make(map[string]*User),
		expires:  make(map[string]time.Time),
		byEmail:  make(map[string]string),
		accounts: make(map[string]*Account),
		once:     make(map[string]onceEntry),
		pending:  make(map[string]map[string]struct{}),
		rates:    make(map[string]rateEntry),
		devices:  make(map[string]map[string]time.Time),
	}
}

// sweep drops expired single-use values and counters, and returns the
// users past their expiry for the caller to purge.
func (u *memoryUsers) sweep(now time.Time) (expired []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, e := range u.expires {
		if !now.Before(e) {
			expired = append(expired, id)
		}
	}
	for k, e := range u.once {
		if !now.Before(e.expiresAt) {
			u.dropOnceLocked(k)
		}
	}
	for k, e := range u.rates {
		if !now.Before(e.ends) {
			delete(u.rates, k)
		}
	}
	for id, devs := range u.devices {
		for h, exp := range devs {
			if !now.Before(exp) {
				delete(devs, h)
			}
		}
		if len(devs) == 0 {
			delete(u.devices, id)
		}
	}
	return expired
}

// liveLocked returns the user unless it is missing or past its expiry.
func (u *memoryUsers) liveLocked(userID string, now time.Time) *User {
	user := u.users[userID]
	if user == nil {
		return nil
	}
	if e, ok := u.expires[userID]; ok && !now.Before(e) {
		return nil
	}
	return user
}

func (u *memoryUsers) clear() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.users)
	clear(u.expires)
	clear(u.byEmail)
	clear(u.accounts)
	clear(u.once)
	clear(u.pending)
	clear(u.rates)
	clear(u.devices)
}

var _ UserStore = (*MemoryStore)(nil)

func (m *MemoryStore) usersOpen(op string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return unavailable(op, errMemoryClosed)
	}
	return nil
}

// CreateUser implements UserStore.
func (m *MemoryStore) CreateUser(ctx context.Context, n NewUser) (*User, error) {
	n.Profile.Email = NormalizeEmail(n.Profile.Email)
	if err := validateProfile(n.Profile); err != nil {
		return nil, err
	}
	if err := m.usersOpen("create user"); err != nil {
		return nil, err
	}
	id, err := newUserID()
	if err != nil {
		return nil, err
	}
	user := &User{ID: id, CreatedAt: m.opts.now(), Profile: n.Profile, Anonymous: n.Anonymous}
	if !m.users.putNew(user, n.TTL, m.opts.now()) {
		return nil, unavailable("create user", errors.New("a random user ID repeated"))
	}
	c := *user
	return &c, nil
}

// insertUser stores an imported user under its own ID unless a live user
// of that ID exists (false).
func (m *MemoryStore) insertUser(ctx context.Context, user *User) (bool, error) {
	if err := m.usersOpen("import user"); err != nil {
		return false, err
	}
	c := *user
	return m.users.putNew(&c, 0, m.opts.now()), nil
}

// putNew stores user unless a live user of its ID exists (false), with an
// expiry ttl from its creation when positive, and indexes its verified
// email.
func (u *memoryUsers) putNew(user *User, ttl time.Duration, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.liveLocked(user.ID, now) != nil {
		return false
	}
	u.users[user.ID] = user
	delete(u.expires, user.ID)
	if ttl > 0 {
		u.expires[user.ID] = user.CreatedAt.Add(ttl)
	}
	u.indexEmailLocked(user)
	return true
}

func (u *memoryUsers) indexEmailLocked(user *User) {
	if user.Profile.Email == "" || !user.Profile.EmailVerified {
		return
	}
	k := hashKey(user.Profile.Email)
	if _, taken := u.byEmail[k]; !taken {
		u.byEmail[k] = user.ID
	}
}

// GetUser implements UserStore.
func (m *MemoryStore) GetUser(ctx context.Context, userID string) (*User, error) {
	if err := m.usersOpen("get user"); err != nil {
		return nil, err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	user := u.liveLocked(userID, now)
	if user == nil {
		return nil, ErrNotFound
	}
	c := *user
	return &c, nil
}

// UpdateUser implements UserStore.
func (m *MemoryStore) UpdateUser(ctx context.Context, user *User) error {
	p := user.Profile
	p.Email = NormalizeEmail(p.Email)
	if err := validateProfile(p); err != nil {
		return err
	}
	if err := m.usersOpen("update user"); err != nil {
		return err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.liveLocked(user.ID, now)
	if old == nil {
		return ErrNotFound
	}
	updated := &User{ID: old.ID, CreatedAt: old.CreatedAt, Profile: p, Anonymous: user.Anonymous,
		Banned: old.Banned, BannedAt: old.BannedAt}
	u.users[user.ID] = updated
	if !updated.Anonymous {
		delete(u.expires, user.ID)
	}
	u.indexEmailLocked(updated)
	return nil
}

// TouchUser implements UserStore.
func (m *MemoryStore) TouchUser(ctx context.Context, userID string, ttl time.Duration) error {
	if err := m.usersOpen("touch user"); err != nil {
		return err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	user := u.liveLocked(userID, now)
	if user == nil {
		return ErrNotFound
	}
	if user.Anonymous && ttl > 0 {
		u.expires[userID] = now.Add(ttl)
	}
	return nil
}

// RemoveUser implements UserStore.
func (m *MemoryStore) RemoveUser(ctx context.Context, userID string) error {
	if err := m.usersOpen("remove user"); err != nil {
		return err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	user := u.users[userID]
	if user == nil {
		return nil
	}
	delete(u.users, userID)
	delete(u.expires, userID)
	if user.Profile.Email != "" {
		k := hashKey(user.Profile.Email)
		if u.byEmail[k] == userID {
			delete(u.byEmail, k)
		}
	}
	return nil
}

// UserByEmail implements UserStore.
func (m *MemoryStore) UserByEmail(ctx context.Context, email string) (*User, error) {
	email = NormalizeEmail(email)
	if email == "" {
		return nil, ErrNotFound
	}
	if err := m.usersOpen("user by email"); err != nil {
		return nil, err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	user := u.liveLocked(u.byEmail[hashKey(email)], m.opts.now())
	if user == nil || user.Profile.Email != email || !user.Profile.EmailVerified {
		return nil, ErrNotFound
	}
	c := *user
	return &c, nil
}

// CreateAccount implements UserStore.
func (m *MemoryStore) CreateAccount(ctx context.Context, a Account) error {
	if err := a.validate(); err != nil {
		return err
	}
	if err := m.usersOpen("create account"); err != nil {
		return err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	k := hashKey(a.Provider, a.ProviderAccountID)
	if _, ok := u.accounts[k]; ok {
		return ErrAccountExists
	}
	u.accounts[k] = &a
	return nil
}

// GetAccount implements UserStore.
func (m *MemoryStore) GetAccount(ctx context.Context, provider, providerAccountID string) (*Account, error) {
	if err := m.usersOpen("get account"); err != nil {
		return nil, err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	a := u.accounts[hashKey(provider, providerAccountID)]
	if a == nil {
		return nil, ErrNotFound
	}
	c := *a
	return &c, nil
}

// AccountsOf implements UserStore. The in-process store scans: it holds a
// development site's handful of accounts.
func (m *MemoryStore) AccountsOf(ctx context.Context, userID string) ([]Account, error) {
	if err := m.usersOpen("accounts of"); err != nil {
		return nil, err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	out := []Account{}
	for _, a := range u.accounts {
		if a.UserID == userID {
			out = append(out, *a)
		}
	}
	sortAccounts(out)
	return out, nil
}

// DeleteAccount implements UserStore.
func (m *MemoryStore) DeleteAccount(ctx context.Context, provider, providerAccountID string) error {
	if err := m.usersOpen("delete account"); err != nil {
		return err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	k := hashKey(provider, providerAccountID)
	if _, ok := u.accounts[k]; !ok {
		return ErrNotFound
	}
	delete(u.accounts, k)
	return nil
}

// PurgeUser implements UserStore.
func (m *MemoryStore) PurgeUser(ctx context.Context, userID string) error {
	if _, err := m.GetUser(ctx, userID); err != nil {
		return err
	}
	return m.purge(ctx, userID)
}

// purge removes the user's accounts, sessions and record, in PurgeUser's
// order; also for guests past their expiry, which GetUser no longer finds.
func (m *MemoryStore) purge(ctx context.Context, userID string) error {
	u := m.users
	u.mu.Lock()
	if user := u.users[userID]; user != nil && user.Profile.Email != "" {
		if k := hashKey(user.Profile.Email); u.byEmail[k] == userID {
			delete(u.byEmail, k)
		}
	}
	for k, a := range u.accounts {
		if a.UserID == userID {
			delete(u.accounts, k)
		}
	}
	u.dropPendingLocked(userID)
	delete(u.devices, userID)
	u.mu.Unlock()
	m.factors.drop(userID)
	if _, err := m.DeleteUser(ctx, userID, ""); err != nil {
		return err
	}
	if err := m.RemoveUser(ctx, userID); err != nil {
		return err
	}
	// Again: a PutOnceFor may have found the user before RemoveUser.
	u.mu.Lock()
	u.dropPendingLocked(userID)
	u.mu.Unlock()
	return nil
}

// dropOnceLocked deletes the single-use value under once key k and its
// owner's index entry.
func (u *memoryUsers) dropOnceLocked(k string) {
	e, ok := u.once[k]
	if !ok {
		return
	}
	delete(u.once, k)
	if idx := u.pending[e.owner]; e.owner != "" && idx != nil {
		delete(idx, k)
		if len(idx) == 0 {
			delete(u.pending, e.owner)
		}
	}
}

// dropPendingLocked deletes every single-use value of the user.
func (u *memoryUsers) dropPendingLocked(userID string) {
	for k := range u.pending[userID] {
		u.dropOnceLocked(k)
	}
	delete(u.pending, userID)
}

// putOnceLocked stores a single-use value, replacing (and unindexing) any
// under the same key.
func (u *memoryUsers) putOnceLocked(k string, e onceEntry) {
	u.dropOnceLocked(k)
	u.once[k] = e
	if e.owner == "" {
		return
	}
	idx := u.pending[e.owner]
	if idx == nil {
		idx = make(map[string]struct{})
		u.pending[e.owner] = idx
	}
	idx[k] = struct{}{}
}

// PutOnce implements UserStore.
func (m *MemoryStore) PutOnce(ctx context.Context, secret string, value []byte, ttl time.Duration) error {
	if err := validateOnce(secret, value, ttl); err != nil {
		return err
	}
	if err := m.usersOpen("put once"); err != nil {
		return err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	u.putOnceLocked(hashKey("once", secret), onceEntry{value: append([]byte(nil), value...), expiresAt: m.opts.now().Add(ttl)})
	return nil
}

// PutOnceFor implements UserStore: the user is checked and the value
// indexed under one lock, so a purge either sees it or comes first.
func (m *MemoryStore) PutOnceFor(ctx context.Context, userID, secret string, value []byte, ttl time.Duration) error {
	if err := validateOnce(secret, value, ttl); err != nil {
		return err
	}
	if err := validateOwner(userID); err != nil {
		return err
	}
	if err := m.usersOpen("put once for user"); err != nil {
		return err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.liveLocked(userID, now) == nil {
		return ErrNotFound
	}
	// Pruned on write, as in Redis; the sweep catches the rest.
	for k := range u.pending[userID] {
		if !now.Before(u.once[k].expiresAt) {
			u.dropOnceLocked(k)
		}
	}
	u.putOnceLocked(hashKey("once", secret), onceEntry{value: append([]byte(nil), value...), expiresAt: now.Add(ttl), owner: userID})
	return nil
}

// TakeOnce implements UserStore.
func (m *MemoryStore) TakeOnce(ctx context.Context, secret string) ([]byte, error) {
	if err := m.usersOpen("take once"); err != nil {
		return nil, err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	k := hashKey("once", secret)
	e, ok := u.once[k]
	u.dropOnceLocked(k)
	if !ok || !now.Before(e.expiresAt) {
		return nil, ErrNotFound
	}
	return e.value, nil
}

// PeekOnce implements UserStore.
func (m *MemoryStore) PeekOnce(ctx context.Context, secret string) ([]byte, error) {
	if err := m.usersOpen("peek once"); err != nil {
		return nil, err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.once[hashKey("once", secret)]
	if !ok || !now.Before(e.expiresAt) {
		return nil, ErrNotFound
	}
	return append([]byte(nil), e.value...), nil
}

// RateHit implements UserStore.
func (m *MemoryStore) RateHit(ctx context.Context, key string, limit int, window time.Duration) (bool, error) {
	if err := validateRate(key, limit, window); err != nil {
		return false, err
	}
	if err := m.usersOpen("rate hit"); err != nil {
		return false, err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	k := hashKey("rate", key)
	e, ok := u.rates[k]
	if !ok || !now.Before(e.ends) {
		e = rateEntry{ends: now.Add(window)}
	}
	// Counting stops past the limit, as the Redis script does.
	if e.count <= limit {
		e.count++
	}
	u.rates[k] = e
	return e.count <= limit, nil
}

// RateReset implements UserStore.
func (m *MemoryStore) RateReset(ctx context.Context, key string) error {
	if err := m.usersOpen("rate reset"); err != nil {
		return err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.rates, hashKey("rate", key))
	return nil
}
