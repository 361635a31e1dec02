package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The device cookie (internal/cookies.Device) holds a random 256-bit token
// that the browser keeps for every account it signs in to. The store
// remembers, per user, the SHA-256 of each token that signed in to that
// user (never the token), with an expiry that each sign-in from the browser
// renews. A remembered browser is exempt from the per-account password
// lockout, and may skip a second factor ("remember this browser") once
// there is one. Forgetting is per user and whole: a password reset, "sign
// out everywhere", removing a sign-in method or a second factor, and
// deleting the account forget every browser of the user.

// Devices is implemented by both stores.
type Devices interface {
	// RememberDevice records that the browser with the device token
	// signed in to userID, for ttl from now, and reports whether the user
	// had another browser remembered. A user keeps at most
	// MaxDevicesPerUser browsers; past that, the ones that would be
	// forgotten first go now.
	RememberDevice(ctx context.Context, userID, token string, ttl time.Duration) (others bool, err error)
	// KnownDevice reports whether the browser with the device token is
	// remembered for userID.
	KnownDevice(ctx context.Context, userID, token string) (bool, error)
	// ForgetDevices forgets every browser of userID, trusted ones too.
	ForgetDevices(ctx context.Context, userID string) error
	// TrustDevice records that the browser with the device token passed
	// userID's second factor and asked to be remembered ("remember this
	// browser"), for ttl from now. The mark sits beside the browser's
	// entry, under the same cap, and ForgetDevices forgets it too.
	TrustDevice(ctx context.Context, userID, token string, ttl time.Duration) error
	// TrustedDevice reports whether the browser with the device token is
	// trusted for userID's second factor.
	TrustedDevice(ctx context.Context, userID, token string) (bool, error)
}

// Members of a user's devices: a browser that signed in, and a browser
// trusted past the second factor.
const (
	deviceKnown   = "device"
	deviceTrusted = "device-trusted"
)

var (
	_ Devices = (*MemoryStore)(nil)
	_ Devices = (*RedisStore)(nil)
)

// MaxDevicesPerUser bounds the browsers remembered for one user.
const MaxDevicesPerUser = 50

// DeviceTokenLength is the length of a device token: 32 random bytes,
// base64url.
const DeviceTokenLength = secretLen

// NewDeviceToken makes a device cookie's value.
func NewDeviceToken() (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("%w: reading random bytes: %w", ErrUnavailable, err)
	}
	return b64.EncodeToString(b[:]), nil
}

// ValidDeviceToken reports whether token has the shape NewDeviceToken
// gives; anything else is no device.
func ValidDeviceToken(token string) bool {
	return validB64(token, secretBytes)
}

func validateDevice(userID, token string, ttl time.Duration) error {
	if err := validateOwner(userID); err != nil {
		return err
	}
	if !ValidDeviceToken(token) {
		return fmt.Errorf("%w: a device token is %d base64url characters", ErrInvalidUser, DeviceTokenLength)
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("%w: a device needs a TTL of at least 1ms", ErrInvalidUser)
	}
	return nil
}

// --- in process ---

// RememberDevice implements Devices.
func (m *MemoryStore) RememberDevice(ctx context.Context, userID, token string, ttl time.Duration) (bool, error) {
	return m.rememberDevice(userID, token, deviceKnown, ttl)
}

// TrustDevice implements Devices.
func (m *MemoryStore) TrustDevice(ctx context.Context, userID, token string, ttl time.Duration) error {
	_, err := m.rememberDevice(userID, token, deviceTrusted, ttl)
	return err
}

func (m *MemoryStore) rememberDevice(userID, token, kind string, ttl time.Duration) (bool, error) {
	if err := validateDevice(userID, token, ttl); err != nil {
		return false, err
	}
	if err := m.usersOpen("remember device"); err != nil {
		return false, err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	devs := u.devices[userID]
	if devs == nil {
		devs = make(map[string]time.Time)
		u.devices[userID] = devs
	}
	for h, exp := range devs {
		if !now.Before(exp) {
			delete(devs, h)
		}
	}
	h := hashKey(kind, token)
	_, known := devs[h]
	others := len(devs) > 1 || len(devs) == 1 && !known
	devs[h] = now.Add(ttl)
	for len(devs) > MaxDevicesPerUser {
		var first string
		for h, exp := range devs {
			if first == "" || exp.Before(devs[first]) {
				first = h
			}
		}
		delete(devs, first)
	}
	return others, nil
}

// KnownDevice implements Devices.
func (m *MemoryStore) KnownDevice(ctx context.Context, userID, token string) (bool, error) {
	return m.deviceMarked(userID, token, deviceKnown)
}

// TrustedDevice implements Devices.
func (m *MemoryStore) TrustedDevice(ctx context.Context, userID, token string) (bool, error) {
	return m.deviceMarked(userID, token, deviceTrusted)
}

func (m *MemoryStore) deviceMarked(userID, token, kind string) (bool, error) {
	if userID == "" || !ValidDeviceToken(token) {
		return false, nil
	}
	if err := m.usersOpen("known device"); err != nil {
		return false, err
	}
	now := m.opts.now()
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	exp, ok := u.devices[userID][hashKey(kind, token)]
	return ok && now.Before(exp), nil
}

// ForgetDevices implements Devices.
func (m *MemoryStore) ForgetDevices(ctx context.Context, userID string) error {
	if err := m.usersOpen("forget devices"); err != nil {
		return err
	}
	u := m.users
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.devices, userID)
	return nil
}

// --- Redis ---
//
//	<prefix>{<usertag>}:devices:<hash>  sorted set, the hashes of the user's
//	                                    device tokens scored by expiry ms;
//	                                    <hash> of the realm's tag and user
//	                                    ID. Expired entries are pruned on
//	                                    write, and the key expires with its
//	                                    last entry.

func (s *RedisStore) devicesKey(userID string) string {
	return s.prefix + "{" + userTag(userID) + "}:devices:" + hashKey("devices", s.realmTag, userID)
}

// RememberDevice implements Devices.
func (s *RedisStore) RememberDevice(ctx context.Context, userID, token string, ttl time.Duration) (bool, error) {
	return s.rememberDevice(ctx, userID, token, deviceKnown, ttl)
}

// TrustDevice implements Devices.
func (s *RedisStore) TrustDevice(ctx context.Context, userID, token string, ttl time.Duration) error {
	_, err := s.rememberDevice(ctx, userID, token, deviceTrusted, ttl)
	return err
}

func (s *RedisStore) rememberDevice(ctx context.Context, userID, token, kind string, ttl time.Duration) (bool, error) {
	if err := validateDevice(userID, token, ttl); err != nil {
		return false, err
	}
	now := s.opts.now()
	var others int
	err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		var err error
		others, err = rememberDeviceScript.Run(ctx, s.client, []string{s.devicesKey(userID)},
			now.UnixMilli(), now.Add(ttl).UnixMilli(), hashKey(kind, s.realmTag, token), MaxDevicesPerUser).Int()
		return err
	})
	if err != nil {
		return false, unavailable("remember device", err)
	}
	return others == 1, nil
}

// KnownDevice implements Devices.
func (s *RedisStore) KnownDevice(ctx context.Context, userID, token string) (bool, error) {
	return s.deviceMarked(ctx, userID, token, deviceKnown)
}

// TrustedDevice implements Devices.
func (s *RedisStore) TrustedDevice(ctx context.Context, userID, token string) (bool, error) {
	return s.deviceMarked(ctx, userID, token, deviceTrusted)
}

func (s *RedisStore) deviceMarked(ctx context.Context, userID, token, kind string) (bool, error) {
	if userID == "" || !ValidDeviceToken(token) {
		return false, nil
	}
	exp, err := retried(ctx, s, func(ctx context.Context, _ int) (float64, error) {
		return s.client.ZScore(ctx, s.devicesKey(userID), hashKey(kind, s.realmTag, token)).Result()
	})
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("known device", err)
	}
	return float64(s.opts.now().UnixMilli()) < exp, nil
}

// ForgetDevices implements Devices. It waits for replicas as a revocation
// does: a forgotten browser must not come back in a failover.
func (s *RedisStore) ForgetDevices(ctx context.Context, userID string) error {
	if userID == "" || len(userID) > MaxUserIDBytes {
		return nil
	}
	return s.deleteWaited(ctx, "forget devices", s.devicesKey(userID))
}

// rememberDeviceScript prunes the entries expired at now, adds ARGV[3]
// scored by its expiry, keeps the ARGV[4] that expire last, and lets the
// key expire with its last entry. It returns 1 if another entry was there.
//
// KEYS[1] devices key. ARGV: now ms, expiry ms, device hash, cap.
var rememberDeviceScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local others = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, 1)) do
  if m ~= ARGV[3] then others = 1 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local over = redis.call('ZRANGE', KEYS[1], 0, -tonumber(ARGV[4]) - 1)
if #over > 0 then redis.call('ZREM', KEYS[1], unpack(over)) end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(last[2]) - now, 1))
return others
`)
