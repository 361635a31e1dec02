package session

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Claims keys (beside the session's, under the user's hash tag, so that
// every script runs on one slot):
//
//	<prefix>{<usertag>}:c:<sessionID>    string, the last result (JSON, with
//	                                     the realm's tag, user, generation
//	                                     and time); kept ttl + max_stale
//	<prefix>{<usertag>}:cx:<sessionID>   string, the session's context; kept
//	                                     until the session's absolute expiry
//	<prefix>{<usertag>}:cl:<sessionID>   string, the lease (a random ID)
//	<prefix>{<usertag>}:cg:<hash>        string, the user's generation
//	                                     (INCR); hash of realm and user ID
//
// Changes go out on the revocation channel as "<origin> c u <userID>"
// (a refresh) and "<origin> c s <sessionID>" (a context switch).

const claimsMessageMarker = "c"

type redisClaimsRecord struct {
	Realm      string          `json:"r"`
	UserID     string          `json:"u"`
	Generation uint64          `json:"g"`
	FetchedAt  int64           `json:"t"` // Unix ms
	Claims     json.RawMessage `json:"v"`
}

type redisClaimsContext struct {
	Realm   string          `json:"r"`
	UserID  string          `json:"u"`
	Context json.RawMessage `json:"c"`
}

func (s *RedisStore) claimsKeys(userID, sessionID string) (record, generation, sessionContext, lease string) {
	tag := userTag(userID)
	base := s.prefix + "{" + tag + "}:"
	return base + "c:" + sessionID, base + "cg:" + hashKey(s.realmTag, userID), base + "cx:" + sessionID, base + "cl:" + sessionID
}

// saveClaimsLua stores a result unless the generation moved, and keeps
// the generation at least as long as the result.
const saveClaimsLua = `
local function save(rec, gen, want, value, keep)
  local g = redis.call('GET', gen) or '0'
  if g ~= want then
    return 0
  end
  redis.call('SET', rec, value, 'PX', keep)
  if g ~= '0' and redis.call('PTTL', gen) < tonumber(keep) then
    redis.call('PEXPIRE', gen, keep)
  end
  return 1
end
`

// saveClaimsScript: KEYS record, generation; ARGV generation, value, keep ms.
var saveClaimsScript = redis.NewScript(saveClaimsLua + `
return save(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
`)

// setContextScript: KEYS record, generation, context; ARGV generation,
// value, keep ms, context value, context ms, channel, message.
var setContextScript = redis.NewScript(saveClaimsLua + `
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
if save(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]) == 0 then
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
`)

// refreshClaimsScript: KEYS generation; ARGV keep ms, channel, message.
var refreshClaimsScript = redis.NewScript(`
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

// releaseLeaseScript: KEYS lease; ARGV the lease's ID.
var releaseLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// LoadClaims implements ClaimsStore. A session that is gone, or another
// realm's, has no claims state (and what was kept of it is removed).
func (s *RedisStore) LoadClaims(ctx context.Context, userID, sessionID string) (ClaimsState, error) {
	if err := checkClaimsInput(userID, sessionID, nil); err != nil {
		return ClaimsState{}, err
	}
	rec, gen, cx, _ := s.claimsKeys(userID, sessionID)
	sessKey := s.sessionKey(userTag(userID), sessionID)
	vals, err := retried(ctx, s, func(ctx context.Context, _ int) ([]any, error) {
		return s.client.MGet(ctx, rec, gen, cx, sessKey).Result()
	})
	if err != nil {
		return ClaimsState{}, unavailable("load claims", err)
	}
	var st ClaimsState
	if g, ok := vals[1].(string); ok {
		if st.Generation, err = strconv.ParseUint(g, 10, 64); err != nil {
			return ClaimsState{}, unavailable("load claims", errors.New("the claims generation is not a number"))
		}
	}
	raw, ok := vals[3].(string)
	if !ok {
		s.forgetClaims(rec, cx)
		return st, nil
	}
	if sess, err := decodeRecord(sessionID, []byte(raw), s.realmTag); err != nil || sess.UserID != userID {
		return st, nil
	}
	if v, ok := vals[0].(string); ok {
		var r redisClaimsRecord
		if json.Unmarshal([]byte(v), &r) == nil && r.Realm == s.realmTag && r.UserID == userID && r.Generation == st.Generation {
			st.Record = &ClaimsRecord{Claims: []byte(r.Claims), FetchedAt: time.UnixMilli(r.FetchedAt).UTC(), Generation: r.Generation}
		}
	}
	if v, ok := vals[2].(string); ok {
		var c redisClaimsContext
		if json.Unmarshal([]byte(v), &c) == nil && c.Realm == s.realmTag && c.UserID == userID {
			st.Context = []byte(c.Context)
		}
	}
	return st, nil
}

// forgetClaims removes what was kept of an ended session, in one DEL
// (the keys share the user's slot); a failure only leaves them to expire.
func (s *RedisStore) forgetClaims(keys ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultLookupTimeout)
	defer cancel()
	_ = s.client.Del(ctx, keys...).Err()
}

func (s *RedisStore) encodeClaimsRecord(userID string, rec ClaimsRecord) (string, error) {
	claims := rec.Claims
	if len(claims) == 0 {
		claims = []byte("{}")
	}
	if !json.Valid(claims) {
		return "", errors.Join(ErrInvalidClaims, errors.New("the claims are not JSON"))
	}
	b, err := json.Marshal(redisClaimsRecord{Realm: s.realmTag, UserID: userID, Generation: rec.Generation, FetchedAt: rec.FetchedAt.UnixMilli(), Claims: claims})
	return string(b), err
}

// SaveClaims implements ClaimsStore.
func (s *RedisStore) SaveClaims(ctx context.Context, userID, sessionID string, rec ClaimsRecord, keep time.Duration) (bool, error) {
	if err := checkClaimsInput(userID, sessionID, nil); err != nil {
		return false, err
	}
	value, err := s.encodeClaimsRecord(userID, rec)
	if err != nil {
		return false, err
	}
	recKey, gen, _, _ := s.claimsKeys(userID, sessionID)
	n, err := retried(ctx, s, func(ctx context.Context, _ int) (int64, error) {
		return s.runScript(ctx, notWaited, saveClaimsScript, []string{recKey, gen},
			strconv.FormatUint(rec.Generation, 10), value, max(keep.Milliseconds(), 1)).Int64()
	})
	if err != nil {
		return false, unavailable("save claims", err)
	}
	return n == 1, nil
}

// LeaseClaims implements ClaimsStore.
func (s *RedisStore) LeaseClaims(ctx context.Context, userID, sessionID string, d time.Duration) (string, error) {
	if err := checkClaimsInput(userID, sessionID, nil); err != nil {
		return "", err
	}
	_, _, _, lease := s.claimsKeys(userID, sessionID)
	id := rand.Text()
	ok, err := s.setNXRetriedTTL(ctx, lease, []byte(id), max(d, time.Millisecond))
	if err != nil {
		return "", unavailable("lease claims", err)
	}
	if !ok {
		return "", nil
	}
	return id, nil
}

// ReleaseClaims implements ClaimsStore.
func (s *RedisStore) ReleaseClaims(ctx context.Context, userID, sessionID, lease string) error {
	if err := checkClaimsInput(userID, sessionID, nil); err != nil {
		return err
	}
	_, _, _, key := s.claimsKeys(userID, sessionID)
	err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.runScript(ctx, notWaited, releaseLeaseScript, []string{key}, lease).Err()
	})
	if err != nil {
		return unavailable("release claims", err)
	}
	return nil
}

// SetClaimsContext implements ClaimsStore.
func (s *RedisStore) SetClaimsContext(ctx context.Context, userID, sessionID string, sessionContext []byte, until time.Time, rec ClaimsRecord, keep time.Duration) error {
	if err := checkClaimsInput(userID, sessionID, sessionContext); err != nil {
		return err
	}
	value, err := s.encodeClaimsRecord(userID, rec)
	if err != nil {
		return err
	}
	if sessionContext == nil {
		sessionContext = []byte("{}")
	}
	cxValue, err := json.Marshal(redisClaimsContext{Realm: s.realmTag, UserID: userID, Context: sessionContext})
	if err != nil {
		return err
	}
	cxTTL := until.Sub(s.opts.now())
	if cxTTL <= 0 {
		return ErrNotFound
	}
	recKey, gen, cx, _ := s.claimsKeys(userID, sessionID)
	err = s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.runScript(ctx, sessionWrite, setContextScript, []string{recKey, gen, cx},
			strconv.FormatUint(rec.Generation, 10), value, max(keep.Milliseconds(), 1),
			cxValue, max(cxTTL.Milliseconds(), 1), s.channel, s.claimsMessage("s", sessionID)).Err()
	})
	if err != nil {
		return unavailable("set claims context", err)
	}
	s.claimsHooks.changed("", sessionID)
	return nil
}

// RefreshClaims implements ClaimsStore. Like a revocation, it waits for
// the replicas, so that a refresh acknowledged once survives a failover.
func (s *RedisStore) RefreshClaims(ctx context.Context, userID string, keep time.Duration) error {
	if userID == "" {
		return nil
	}
	_, gen, _, _ := s.claimsKeys(userID, "")
	err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.runScript(ctx, revocation, refreshClaimsScript, []string{gen},
			max(keep.Milliseconds(), 1), s.channel, s.claimsMessage("u", userID)).Err()
	})
	if err != nil {
		return unavailable("refresh claims", err)
	}
	s.claimsHooks.changed(userID, "")
	return nil
}

func (s *RedisStore) claimsMessage(kind, id string) string {
	return s.origin + " " + claimsMessageMarker + " " + kind + " " + id
}

// applyRemoteClaimsChange handles the part of a claims message after its
// marker: "u <userID>" or "s <sessionID>".
func (s *RedisStore) applyRemoteClaimsChange(rest string) {
	kind, id, ok := strings.Cut(rest, " ")
	switch {
	case !ok || id == "":
	case kind == "u":
		s.claimsHooks.changed(id, "")
	case kind == "s" && validSessionID(id):
		s.claimsHooks.changed("", id)
	}
}

// OnClaimsChange implements ClaimsStore.
func (s *RedisStore) OnClaimsChange(fn func(userID, sessionID string)) func() {
	return s.claimsHooks.add(fn)
}

// ClaimsChangesLive implements ClaimsStore: while the revocation channel's
// subscription is known to be up.
func (s *RedisStore) ClaimsChangesLive() bool { return s.live.Load() }
