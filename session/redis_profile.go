package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// maxRewriteAttempts bounds rereads of a record that changed between the
// read and the write (a concurrent rewrite; a touch does not count).
const maxRewriteAttempts = 5

// SetProfile implements Store: each live session of the user whose
// profile differs is read, changed and written back in place if nothing
// but its last use changed meanwhile (rewriteScript), and announced.
func (s *RedisStore) SetProfile(ctx context.Context, userID string, p Profile) (int, error) {
	if err := validateProfileOf(userID, p); err != nil {
		return 0, err
	}
	tag := userTag(userID)
	index := s.indexKey(tag)
	ids, err := retried(ctx, s, func(ctx context.Context, _ int) ([]string, error) {
		return s.client.ZRange(ctx, index, 0, -1).Result()
	})
	if err != nil {
		return 0, unavailable("set profile", err)
	}
	changed := 0
	for _, id := range ids {
		ok, err := s.rewrite(ctx, tag, userID, id, func(sess *Session) bool {
			if sess.Profile == p {
				return false
			}
			sess.Profile = p
			return true
		})
		if err != nil {
			return changed, unavailable("set profile", err)
		}
		if ok {
			changed++
		}
	}
	return changed, nil
}

// rewrite reads the user's live session id, lets change modify it, and
// writes it back in place, keeping its TTL and the last use stored
// meanwhile, and announces it. It reports false, and writes nothing, when
// the session is gone or change reports no change. SetProfile and
// Reauthenticate share it.
func (s *RedisStore) rewrite(ctx context.Context, tag, userID, id string, change func(*Session) bool) (bool, error) {
	keys := []string{s.sessionKey(tag, id), s.indexKey(tag)}
	for range maxRewriteAttempts {
		raw, err := retried(ctx, s, func(ctx context.Context, _ int) (string, error) {
			return s.client.Get(ctx, keys[0]).Result()
		})
		if errors.Is(err, redis.Nil) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		sess, err := decodeRecord(id, []byte(raw), s.realmTag)
		if err != nil || sess.UserID != userID || sess.expired(s.opts.now(), s.opts.IdleTTL) || !change(sess) {
			return false, nil
		}
		rec, err := encodeRecord(sess, s.realmTag)
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrInvalidSession, err)
		}
		var n int
		err = s.retryWrite(ctx, func(ctx context.Context, _ int) error {
			var err error
			n, err = s.runScript(ctx, sessionWrite, rewriteScript, keys, raw, rec, id, s.channel, s.revokeMessage(id)).Int()
			return err
		})
		if err != nil {
			return false, err
		}
		switch n {
		case 1:
			s.revokedHere(id)
			return true, nil
		case -1:
			return false, nil
		}
	}
	return false, fmt.Errorf("session %s kept changing; try again", id)
}

// rewriteScript replaces a session's record by a new one, keeping its TTL
// and the last use stored meanwhile (a touch), and announces the session
// so that every instance drops what it keeps of it. It returns 1, 0 if the
// record changed otherwise since the caller read it (read again), or -1
// if the session is gone.
//
// KEYS[1] session key, KEYS[2] index key. ARGV: record read, new record,
// session ID, channel, message.
var rewriteScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v or not redis.call('ZSCORE', KEYS[2], ARGV[3]) then return -1 end
if string.sub(v, 1, 1) ~= string.sub(ARGV[1], 1, 1) or string.sub(v, 15) ~= string.sub(ARGV[1], 15) then return 0 end
redis.call('SET', KEYS[1], string.sub(ARGV[2], 1, 1) .. string.sub(v, 2, 14) .. string.sub(ARGV[2], 15), 'KEEPTTL')
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)
