package session

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Banner is implemented by both stores: it marks a user banned or not.
// Sign-ins read the mark from the user record (User.Banned); UpdateUser
// keeps it.
type Banner interface {
	// SetBanned sets the user's ban mark (and BannedAt, to now, when it is
	// set; an existing mark keeps its time) and returns the user;
	// ErrNotFound if there is no such user. It changes nothing else: ending
	// the user's sessions is the caller's next step.
	SetBanned(ctx context.Context, userID string, banned bool) (*User, error)
}

var (
	_ Banner = (*MemoryStore)(nil)
	_ Banner = (*RedisStore)(nil)
)

// SetBanned implements Banner.
func (m *MemoryStore) SetBanned(ctx context.Context, userID string, banned bool) (*User, error) {
	if err := m.usersOpen("set banned"); err != nil {
		return nil, err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.liveLocked(userID, now)
	if old == nil {
		return nil, ErrNotFound
	}
	updated := *old
	switch {
	case banned && !old.Banned:
		updated.Banned, updated.BannedAt = true, now
	case !banned:
		updated.Banned, updated.BannedAt = false, time.Time{}
	}
	u.users[userID] = &updated
	c := updated
	return &c, nil
}

// SetBanned implements Banner. The record is changed in one script, keeping
// every other field as stored (a concurrent profile update cannot undo the
// mark, nor the mark the update), and the write waits for the connected
// replicas as a revocation does, so that a failover does not lift a ban.
func (s *RedisStore) SetBanned(ctx context.Context, userID string, banned bool) (*User, error) {
	if userID == "" || len(userID) > MaxUserIDBytes {
		return nil, ErrNotFound
	}
	flag := "0"
	if banned {
		flag = "1"
	}
	raw, err := retried(ctx, s, func(ctx context.Context, _ int) (string, error) {
		return s.runScript(ctx, revocation, setBannedScript, []string{s.userKey(userID)},
			s.realmTag, userID, flag, s.opts.now().UnixMilli()).Text()
	})
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("set banned", err)
	}
	u, err := decodeUser([]byte(raw), s.realmTag, s.opts.now())
	if err != nil || u.ID != userID {
		return nil, ErrNotFound
	}
	return u, nil
}

// setBannedScript sets or clears the ban fields of a user record of this
// realm and returns the record; nil if there is none. cjson keeps the other
// fields: numbers are integers under 2^53 (milliseconds), which it writes
// back exactly.
//
// KEYS[1] user key. ARGV: realm tag, user ID, "1" or "0", now ms.
var setBannedScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local ok, rec = pcall(cjson.decode, v)
if not ok or type(rec) ~= 'table' or rec.r ~= ARGV[1] or rec.id ~= ARGV[2] then return false end
if ARGV[3] == '1' then
  if not rec.b then rec.b = true; rec.ba = tonumber(ARGV[4]) end
else
  rec.b = nil; rec.ba = nil
end
local out = cjson.encode(rec)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return out
`)
