package session

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// registerInstanceScript keeps the realm's instances in a sorted set of
// "<instance> <storage>" scored by expiry (ms, the caller's clock): it drops
// the expired, returns the storage of any other live instance that differs,
// else replaces the instance's record.
//
// KEYS[1] the set. ARGV: now ms, expiry ms, TTL ms, instance, storage.
var registerInstanceScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local mine = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local sp = string.find(m, ' ', 1, true)
  local inst, st = string.sub(m, 1, sp - 1), string.sub(m, sp + 1)
  if inst == ARGV[4] then
    table.insert(mine, m)
  elseif st ~= ARGV[5] then
    return st
  end
end
for _, m in ipairs(mine) do redis.call('ZREM', KEYS[1], m) end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4] .. ' ' .. ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return ''
`)

// instancesKey is the realm's registry of instances.
func (s *RedisStore) instancesKey() string {
	return s.prefix + "instances:" + hashKey("instances", s.realmTag)
}

// RegisterInstance implements InstanceRegistry.
func (s *RedisStore) RegisterInstance(ctx context.Context, instance, storage string, ttl time.Duration) (string, error) {
	if err := validateInstance(instance, storage, ttl); err != nil {
		return "", err
	}
	now := s.opts.now()
	var conflict string
	err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		var err error
		conflict, err = registerInstanceScript.Run(ctx, s.client, []string{s.instancesKey()},
			now.UnixMilli(), now.Add(ttl).UnixMilli(), ttl.Milliseconds(), instance, storage).Text()
		return err
	})
	if err != nil {
		return "", unavailable("register instance", err)
	}
	return conflict, nil
}

// UnregisterInstance implements InstanceRegistry.
func (s *RedisStore) UnregisterInstance(ctx context.Context, instance, storage string) error {
	if err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.client.ZRem(ctx, s.instancesKey(), instanceMember(instance, storage)).Err()
	}); err != nil {
		return unavailable("unregister instance", err)
	}
	return nil
}

var _ InstanceRegistry = (*RedisStore)(nil)
