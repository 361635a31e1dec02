package session

import "github.com/redis/go-redis/v9"

// Lua scripts: each runs atomically on the one node that owns the user's
// hash slot. Times come from the caller's clock (ARGV), never Redis's, so a
// store's Options.Now governs expiry; TTLs are relative for the same reason.

// recordLua reads the record fields the scripts need (layout: codec.go).
const recordLua = `
local function live(v, now, idle)
  if not v then return false end
  local last = tonumber(string.sub(v, 2, 14))
  local exp = tonumber(string.sub(v, 15, 27))
  if not last or not exp then return false end
  return now < exp and now < last + idle
end
-- The user ID: a uvarint length (at most 2 bytes: IDs are <= 256 bytes) at
-- offset 27, then the bytes.
local function userOf(v)
  local n = string.byte(v, 28)
  if not n then return nil end
  local from = 29
  if n >= 128 then
    local hi = string.byte(v, 29)
    if not hi then return nil end
    n = n - 128 + hi * 128
    from = 30
  end
  return string.sub(v, from, from + n - 1)
end
-- A record of the realm whose tag is tag: version '2' and the tag at the end.
-- Scripts with a fixed argument list take the tag last (ARGV[#ARGV]), so
-- arguments added before it keep their numbers.
local function inRealm(v, tag)
  return string.sub(v, 1, 1) == '2' and string.sub(v, -#tag) == tag
end
`

// lookupScript returns the session record, or nil if it is missing, of
// another realm (left alone) or expired (then deletes it). When last use is
// at least a touch interval old it rewrites last use in place, moves the
// key's TTL to the earlier of the absolute and the new idle expiry, and
// moves the session's index score with it: lookup and touch in one round
// trip. A master that refuses writes (min-replicas-to-write, a full
// maxmemory) skips the touch or the delete instead of failing the lookup.
//
// A session missing from its user's index is gone too: were the index
// evicted (maxmemory) or lost, revoking all the user's sessions would miss
// it, so it counts as signed out.
//
// KEYS[1] session key, KEYS[2] index key. ARGV: now ms, idle TTL ms, touch
// interval ms, session ID, realm tag (last).
var lookupScript = redis.NewScript(recordLua + `
local v = redis.call('GET', KEYS[1])
if not v or not inRealm(v, ARGV[#ARGV]) then return false end
local now, idle = tonumber(ARGV[1]), tonumber(ARGV[2])
if not live(v, now, idle) or not redis.call('ZSCORE', KEYS[2], ARGV[4]) then
  redis.pcall('DEL', KEYS[1])
  return false
end
local last = tonumber(string.sub(v, 2, 14))
if now - last < tonumber(ARGV[3]) then return v end
local exp = tonumber(string.sub(v, 15, 27))
local stamp = string.format('%013d', now)
local ends = math.min(exp, now + idle)
local w = redis.pcall('SETRANGE', KEYS[1], 1, stamp)
if type(w) == 'table' and w.err then return v end
redis.call('PEXPIRE', KEYS[1], ends - now)
redis.call('ZADD', KEYS[2], 'XX', ends / 1000, ARGV[4])
return string.sub(v, 1, 1) .. stamp .. string.sub(v, 15)
`)

// createScript stores a session and adds it to the index, a sorted set of
// session IDs scored by when each ends unused (Session.EndsAt, seconds to
// the millisecond), pruning entries past theirs. Past the cap it removes the
// entries that end first (the least recently used), never the new one,
// announces them and returns their IDs: they are signed out at once (a
// lookup finds them missing from the index); the caller deletes their
// records. The index lives as long as its longest session.
//
// Entries written before scores were end times carry the absolute expiry,
// never earlier than the end: none is pruned early.
//
// KEYS[1] session key, KEYS[2] index key. ARGV: record, session TTL ms,
// session ID, end s, now s, index TTL ms, cap, channel, origin.
var createScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
-- The lowest entries past the cap and one more (so that skipping the new
-- one still leaves enough); at most 1000 at once (Lua's unpack limit),
-- later sign-ins end the rest.
local cand = redis.call('ZRANGE', KEYS[2], 0, -tonumber(ARGV[7]))
local over = math.min(#cand - 1, 1000)
local evicted = {}
for _, id in ipairs(cand) do
  if #evicted >= over then break end
  if id ~= ARGV[3] then evicted[#evicted + 1] = id end
end
if #evicted > 0 then
  redis.call('ZREM', KEYS[2], unpack(evicted))
  redis.call('PUBLISH', ARGV[8], ARGV[9] .. ' ' .. table.concat(evicted, ' '))
end
local ttl = tonumber(ARGV[6])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return evicted
`)

// deleteScript deletes one session of the realm and its index entry and
// announces it.
//
// KEYS[1] session key, KEYS[2] index key. ARGV: session ID, channel,
// revocation message, realm tag (last).
var deleteScript = redis.NewScript(recordLua + `
local v = redis.call('GET', KEYS[1])
if v and not inRealm(v, ARGV[#ARGV]) then return 0 end
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n
`)

// deleteByIDScript deletes one session if it belongs to the user and the
// realm. Returns -1
// if there is no such session of the user, 1 if a live session ended, 0 if
// an expired one was removed.
//
// KEYS[1] session key, KEYS[2] index key. ARGV: session ID, channel,
// revocation message, now ms, idle TTL ms, user ID, realm tag (last).
var deleteByIDScript = redis.NewScript(recordLua + `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return -1
end
if userOf(v) ~= ARGV[6] or not inRealm(v, ARGV[#ARGV]) then return -1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
if live(v, tonumber(ARGV[4]), tonumber(ARGV[5])) then return 1 end
return 0
`)

// deleteUserScript deletes every session of the user in the index but one.
// The caller read the index first to name every key (Cluster needs keys
// declared); if the index changed since, it returns {-1} and the caller
// retries. Otherwise it returns {live sessions ended, revoked IDs...}.
// The index is shared by users whose tags collide, so each record's user ID
// and realm are checked.
//
// KEYS[1] index key, KEYS[2..] session keys in index order. ARGV: except
// session ID, channel, origin, now ms, idle TTL ms, user ID, realm tag,
// session IDs in index order.
var deleteUserScript = redis.NewScript(recordLua + `
local first = 8
local n = #KEYS - 1
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members ~= n then return {-1} end
for i, m in ipairs(members) do
  if m ~= ARGV[first + i - 1] then return {-1} end
end
local now, idle, user = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local out = {0}
local revoked = {}
for i = 1, n do
  local sid = ARGV[first + i - 1]
  local v = redis.call('GET', KEYS[i + 1])
  if not v then
    redis.call('ZREM', KEYS[1], sid)
  elseif sid ~= ARGV[1] and userOf(v) == user and inRealm(v, ARGV[7]) then
    redis.call('DEL', KEYS[i + 1])
    redis.call('ZREM', KEYS[1], sid)
    if live(v, now, idle) then out[1] = out[1] + 1 end
    revoked[#revoked + 1] = sid
    out[#out + 1] = sid
  end
end
if #revoked > 0 then
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. table.concat(revoked, ' '))
end
return out
`)
