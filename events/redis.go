package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// Defaults of the Redis queue.
const (
	// DefaultMaxLen bounds the stream: entries are deleted once delivered
	// or dead-lettered, so it bounds the backlog. XADD trims it
	// approximately (MAXLEN ~): past the bound the oldest undelivered
	// events are dropped.
	DefaultMaxLen = 100000
	// DefaultClaimIdle is how long an entry a consumer holds may go
	// unrenewed before another instance takes it over (XAUTOCLAIM): a
	// dead instance's events move on after this long.
	DefaultClaimIdle = 30 * time.Second
	// groupName is the consumer group every instance of a realm joins.
	groupName = "delivery"
)

// RedisQueue is a Redis stream with one consumer group shared by the
// instances of a realm. Its keys share one hash tag, so they live in one
// Redis Cluster slot and its scripts are atomic there too:
//
//	<prefix>{ev:<realm tag>}:q     stream: id, key, body, t (ms), tp (traceparent, when traced)
//	<prefix>{ev:<realm tag>}:o     hash: key → stream IDs not yet done, in order
//	<prefix>{ev:<realm tag>}:dead  list of dead letters (JSON), newest first
type RedisQueue struct {
	client    redis.UniversalClient
	stream    string
	order     string
	dead      string
	maxLen    int64
	maxDead   int
	claimIdle time.Duration

	groupOnce sync.Mutex
	grouped   bool

	claimMu   sync.Mutex
	lastClaim time.Time
	cursor    string
}

// RedisQueueOptions configure NewRedisQueue; zero fields take defaults.
type RedisQueueOptions struct {
	// KeyPrefix starts every key. Default: the realm's session key prefix
	// (session.DefaultKeyPrefixFor).
	KeyPrefix string
	// Realm is the realm whose events these are. Required.
	Realm string
	// MaxLen bounds the stream. Default: DefaultMaxLen.
	MaxLen int64
	// MaxDeadLetters bounds the dead letters kept. Default:
	// DefaultMaxDeadLetters.
	MaxDeadLetters int
	// ClaimIdle: see DefaultClaimIdle.
	ClaimIdle time.Duration
}

// NewRedisQueue uses client (which the caller closes).
func NewRedisQueue(client redis.UniversalClient, o RedisQueueOptions) (*RedisQueue, error) {
	if o.Realm == "" {
		return nil, errors.New("events: a Redis queue needs its realm")
	}
	prefix := o.KeyPrefix
	if prefix == "" {
		prefix = session.DefaultKeyPrefixFor(o.Realm)
	}
	base := prefix + "{ev:" + session.RealmTag(o.Realm) + "}:"
	q := &RedisQueue{client: client, stream: base + "q", order: base + "o", dead: base + "dead",
		maxLen: o.MaxLen, maxDead: o.MaxDeadLetters, claimIdle: o.ClaimIdle, cursor: "0-0"}
	if q.maxLen <= 0 {
		q.maxLen = DefaultMaxLen
	}
	if q.maxDead <= 0 {
		q.maxDead = DefaultMaxDeadLetters
	}
	if q.claimIdle <= 0 {
		q.claimIdle = DefaultClaimIdle
	}
	return q, nil
}

// Keys are the queue's Redis keys: stream, order hash, dead letters.
func (q *RedisQueue) Keys() (stream, order, dead string) { return q.stream, q.order, q.dead }

// ClaimIdle implements Queue.
func (q *RedisQueue) ClaimIdle() time.Duration { return q.claimIdle }

// enqueueScript adds the event to the stream and to its key's line.
// KEYS: stream, order. ARGV: maxlen, id, key, body, created ms,
// traceparent or "".
var enqueueScript = redis.NewScript(`
local sid
if ARGV[6] ~= '' then
  sid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[2], 'key', ARGV[3], 'body', ARGV[4], 't', ARGV[5], 'tp', ARGV[6])
else
  sid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[2], 'key', ARGV[3], 'body', ARGV[4], 't', ARGV[5])
end
local cur = redis.call('HGET', KEYS[2], ARGV[3])
if cur then
  redis.call('HSET', KEYS[2], ARGV[3], cur .. ' ' .. sid)
else
  redis.call('HSET', KEYS[2], ARGV[3], sid)
end
return sid
`)

// headScript answers whether ARGV[2] is the first entry of key ARGV[1]'s
// line still in the stream. Entries trimmed away (MAXLEN) leave the line
// here, so a user is never stuck behind an event that no longer exists.
// KEYS: stream, order.
var headScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then return 1 end
local n = 0
while true do
  local first, rest = string.match(cur, '^(%S+)%s*(.*)$')
  if not first then redis.call('HDEL', KEYS[2], ARGV[1]) return 1 end
  if first == ARGV[2] then return 1 end
  if #redis.call('XRANGE', KEYS[1], first, first) > 0 then return 0 end
  cur = rest
  n = n + 1
  if cur == '' then redis.call('HDEL', KEYS[2], ARGV[1]) else redis.call('HSET', KEYS[2], ARGV[1], cur) end
  if n >= 1000 then return 0 end
end
`)

// finishScript acknowledges and deletes an entry, removes it from its
// key's line and, with a dead letter, keeps that (bounded).
// KEYS: stream, order, dead. ARGV: group, stream ID, key, dead letter or
// "", max dead letters.
var finishScript = redis.NewScript(`
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local cur = redis.call('HGET', KEYS[2], ARGV[3])
if cur then
  local kept = {}
  for id in string.gmatch(cur, '%S+') do
    if id ~= ARGV[2] then kept[#kept + 1] = id end
  end
  if #kept == 0 then redis.call('HDEL', KEYS[2], ARGV[3]) else redis.call('HSET', KEYS[2], ARGV[3], table.concat(kept, ' ')) end
end
if ARGV[4] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[4])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
end
return 1
`)

// Enqueue implements Queue.
func (q *RedisQueue) Enqueue(ctx context.Context, ev Event) error {
	err := enqueueScript.Run(ctx, q.client, []string{q.stream, q.order},
		q.maxLen, ev.ID, ev.Key, ev.Body, ev.Created.UnixMilli(), ev.TraceParent).Err()
	if err != nil {
		return fmt.Errorf("events: queueing %s in redis: %w", ev.ID, err)
	}
	return nil
}

func (q *RedisQueue) ensureGroup(ctx context.Context) error {
	q.groupOnce.Lock()
	defer q.groupOnce.Unlock()
	if q.grouped {
		return nil
	}
	// From the stream's start: events queued before any instance ran are
	// delivered too.
	err := q.client.XGroupCreateMkStream(ctx, q.stream, groupName, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("events: creating the redis consumer group: %w", err)
	}
	q.grouped = true
	return nil
}

// Read implements Queue: entries claimed from idle consumers first (at most
// every half claim idle time), then new ones.
func (q *RedisQueue) Read(ctx context.Context, consumer string, n int, wait time.Duration) ([]Entry, error) {
	if err := q.ensureGroup(ctx); err != nil {
		return nil, err
	}
	if claimed, err := q.autoclaim(ctx, consumer, n); err != nil || len(claimed) > 0 {
		return claimed, err
	}
	block := wait
	if block < time.Millisecond {
		block = -1 // no BLOCK argument: answer at once
	}
	res, err := q.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: groupName, Consumer: consumer, Streams: []string{q.stream, ">"}, Count: int64(n), Block: block,
	}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case redis.HasErrorPrefix(err, "NOGROUP"):
		// The stream was deleted (FLUSHALL): make the group again.
		q.groupOnce.Lock()
		q.grouped = false
		q.groupOnce.Unlock()
		return nil, fmt.Errorf("events: the redis consumer group is gone: %w", err)
	case err != nil:
		return nil, fmt.Errorf("events: reading the redis stream: %w", err)
	}
	var out []Entry
	for _, s := range res {
		for _, m := range s.Messages {
			out = append(out, entryOf(m))
		}
	}
	return out, nil
}

func (q *RedisQueue) autoclaim(ctx context.Context, consumer string, n int) ([]Entry, error) {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()
	if time.Since(q.lastClaim) < q.claimIdle/2 && q.cursor == "0-0" {
		return nil, nil
	}
	msgs, next, err := q.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: q.stream, Group: groupName, Consumer: consumer, MinIdle: q.claimIdle, Start: q.cursor, Count: int64(n),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("events: claiming idle redis entries: %w", err)
	}
	q.cursor = next
	if next == "0-0" {
		q.lastClaim = time.Now()
		q.pruneConsumers(ctx)
	}
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		if m.Values == nil {
			continue // deleted meanwhile
		}
		out = append(out, entryOf(m))
	}
	return out, nil
}

func entryOf(m redis.XMessage) Entry {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	ms, _ := strconv.ParseInt(str("t"), 10, 64)
	return Entry{Ref: m.ID, Event: Event{ID: str("id"), Key: str("key"), Body: []byte(str("body")), Created: time.UnixMilli(ms), TraceParent: str("tp")}}
}

// Keep implements Queue: XCLAIM to itself resets the idle time of the
// entries consumer still owns (those claimed away meanwhile are returned).
func (q *RedisQueue) Keep(ctx context.Context, consumer string, refs []string) ([]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	pend, err := q.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: q.stream, Group: groupName, Consumer: consumer, Start: "-", End: "+", Count: int64(len(refs)) + readBatch,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("events: listing held redis entries: %w", err)
	}
	owned := make(map[string]bool, len(pend))
	for _, p := range pend {
		owned[p.ID] = true
	}
	var mine, lost []string
	for _, r := range refs {
		if owned[r] {
			mine = append(mine, r)
		} else {
			lost = append(lost, r)
		}
	}
	if len(mine) > 0 {
		err = q.client.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream: q.stream, Group: groupName, Consumer: consumer, MinIdle: 0, Messages: mine,
		}).Err()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("events: renewing held redis entries: %w", err)
		}
	}
	return lost, nil
}

// pruneConsumers deletes consumers that hold nothing and have been idle for
// long: each start of an instance joins under a new name.
func (q *RedisQueue) pruneConsumers(ctx context.Context) {
	cs, err := q.client.XInfoConsumers(ctx, q.stream, groupName).Result()
	if err != nil {
		return
	}
	stale := max(time.Hour, 10*q.claimIdle)
	for _, c := range cs {
		if c.Pending == 0 && c.Idle > stale {
			_ = q.client.XGroupDelConsumer(ctx, q.stream, groupName, c.Name).Err()
		}
	}
}

// Head implements Queue.
func (q *RedisQueue) Head(ctx context.Context, e Entry) (bool, error) {
	n, err := headScript.Run(ctx, q.client, []string{q.stream, q.order}, e.Key, e.Ref).Int()
	if err != nil {
		return false, fmt.Errorf("events: checking the order of %s: %w", e.ID, err)
	}
	return n == 1, nil
}

// Done implements Queue.
func (q *RedisQueue) Done(ctx context.Context, e Entry) error {
	return q.finish(ctx, e, "")
}

// Dead implements Queue.
func (q *RedisQueue) Dead(ctx context.Context, e Entry, d DeadLetter) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return q.finish(ctx, e, string(raw))
}

func (q *RedisQueue) finish(ctx context.Context, e Entry, dead string) error {
	err := finishScript.Run(ctx, q.client, []string{q.stream, q.order, q.dead},
		groupName, e.Ref, e.Key, dead, q.maxDead).Err()
	if err != nil {
		return fmt.Errorf("events: finishing %s: %w", e.ID, err)
	}
	return nil
}

// DeadLetters implements Queue.
func (q *RedisQueue) DeadLetters(ctx context.Context, n int) ([]DeadLetter, error) {
	raws, err := q.client.LRange(ctx, q.dead, 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("events: reading dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(raws))
	for _, r := range raws {
		var d DeadLetter
		if json.Unmarshal([]byte(r), &d) == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// Backlog implements Queue: the stream's length (entries leave it when
// delivered or dead-lettered) and the dead-letter list's, in one round
// trip (the keys share a slot).
func (q *RedisQueue) Backlog(ctx context.Context) (Backlog, error) {
	pipe := q.client.Pipeline()
	pending := pipe.XLen(ctx, q.stream)
	dead := pipe.LLen(ctx, q.dead)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Backlog{}, fmt.Errorf("events: reading the queue's size: %w", err)
	}
	return Backlog{Pending: pending.Val(), Dead: dead.Val()}, nil
}

var _ Queue = (*RedisQueue)(nil)
