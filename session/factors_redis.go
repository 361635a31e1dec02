package session

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps a user's second factors in one hash, so that each change is
// one atomic step on one slot (the user's tag, as its other keys):
//
//	<prefix>{<usertag>}:factors:<hash>  hash; <hash> of the realm's tag
//	                                     and the user ID. Fields:
//	  totp        JSON {s: sealed secret, c: created ms, r: realm tag}
//	  step        the last accepted TOTP time step
//	  bc:<hash>   "1" per unused backup code (its hash)
//	  pk:<id>     JSON passkey (name, credential, created, realm tag)
//	  pu:<id>     "<sign count>:<last used ms>:<backup state 0|1>"
//
// The mutable part of a passkey has a field of its own, so a script can
// check and move its counter without decoding JSON.

type totpRecord struct {
	Secret  string `json:"s"`
	Created int64  `json:"c"`
	Realm   string `json:"r"`
}

type passkeyRecord struct {
	Name           string `json:"n,omitempty"`
	Credential     []byte `json:"k"`
	BackupEligible bool   `json:"be,omitempty"`
	Created        int64  `json:"c"`
	Realm          string `json:"r"`
}

func (s *RedisStore) factorsKey(userID string) string {
	return s.prefix + "{" + userTag(userID) + "}:factors:" + hashKey("factors", s.realmTag, userID)
}

// Factors implements SecondFactors.
func (s *RedisStore) Factors(ctx context.Context, userID string) (*UserFactors, error) {
	out := &UserFactors{}
	if validateOwner(userID) != nil {
		return out, nil
	}
	fields, err := retried(ctx, s, func(ctx context.Context, _ int) (map[string]string, error) {
		return s.client.HGetAll(ctx, s.factorsKey(userID)).Result()
	})
	if err != nil {
		return nil, unavailable("read second factors", err)
	}
	use := map[string]string{}
	for f, v := range fields {
		switch {
		case f == "totp":
			var r totpRecord
			if json.Unmarshal([]byte(v), &r) == nil && r.Realm == s.realmTag && r.Secret != "" {
				out.TOTP = &TOTP{Secret: r.Secret, CreatedAt: time.UnixMilli(r.Created).UTC()}
			}
		case f == "step":
			out.LastTOTPStep, _ = strconv.ParseInt(v, 10, 64)
		case strings.HasPrefix(f, "bc:"):
			out.BackupCodes++
		case strings.HasPrefix(f, "pu:"):
			use[f[len("pu:"):]] = v
		}
	}
	for f, v := range fields {
		id, ok := strings.CutPrefix(f, "pk:")
		if !ok {
			continue
		}
		var r passkeyRecord
		if json.Unmarshal([]byte(v), &r) != nil || r.Realm != s.realmTag {
			continue
		}
		p := Passkey{ID: id, Name: r.Name, Credential: r.Credential, BackupEligible: r.BackupEligible, CreatedAt: time.UnixMilli(r.Created).UTC()}
		p.SignCount, p.LastUsedAt, p.BackupState = parsePasskeyUse(use[id])
		out.Passkeys = append(out.Passkeys, p)
	}
	if out.TOTP == nil {
		out.LastTOTPStep = 0
	}
	sortPasskeys(out.Passkeys)
	return out, nil
}

func parsePasskeyUse(v string) (count uint32, lastUsed time.Time, backedUp bool) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return 0, time.Time{}, false
	}
	c, _ := strconv.ParseUint(parts[0], 10, 32)
	if ms, _ := strconv.ParseInt(parts[1], 10, 64); ms > 0 {
		lastUsed = time.UnixMilli(ms).UTC()
	}
	return uint32(c), lastUsed, parts[2] == "1"
}

func passkeyUse(count uint32, lastUsed time.Time, backedUp bool) string {
	ms := int64(0)
	if !lastUsed.IsZero() {
		ms = lastUsed.UnixMilli()
	}
	bs := "0"
	if backedUp {
		bs = "1"
	}
	return strconv.FormatUint(uint64(count), 10) + ":" + strconv.FormatInt(ms, 10) + ":" + bs
}

// writeFactors runs a factor script on the user's key. With create, the
// user must exist: it is checked before and, as PutOnceFor does, after
// the write, whose traces are removed when a purge ran in between.
func (s *RedisStore) writeFactors(ctx context.Context, op, userID string, create bool, d durability, script *redis.Script, args ...any) (int64, error) {
	if err := validateOwner(userID); err != nil {
		return 0, err
	}
	if create {
		if _, err := s.GetUser(ctx, userID); err != nil {
			return 0, err
		}
	}
	var n int64
	err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		var err error
		n, err = s.runScript(ctx, d, script, []string{s.factorsKey(userID)}, args...).Int64()
		return err
	})
	if err != nil {
		return 0, unavailable(op, err)
	}
	if create {
		if _, err := s.GetUser(ctx, userID); errors.Is(err, ErrNotFound) {
			_ = s.ResetFactors(ctx, userID)
			return 0, ErrNotFound
		}
	}
	return n, nil
}

// SetTOTP implements SecondFactors.
func (s *RedisStore) SetTOTP(ctx context.Context, userID string, t TOTP) error {
	if err := t.validate(); err != nil {
		return err
	}
	rec, _ := json.Marshal(totpRecord{Secret: t.Secret, Created: t.CreatedAt.UnixMilli(), Realm: s.realmTag})
	_, err := s.writeFactors(ctx, "set totp", userID, true, notWaited, hsetScript, "totp", rec)
	return err
}

// SwapTOTPSecret implements SecondFactors.
func (s *RedisStore) SwapTOTPSecret(ctx context.Context, userID, old, new string) (bool, error) {
	if err := (TOTP{Secret: new}).validate(); err != nil {
		return false, err
	}
	f, err := s.Factors(ctx, userID)
	if err != nil || f.TOTP == nil || f.TOTP.Secret != old {
		return false, err
	}
	oldRec, _ := json.Marshal(totpRecord{Secret: old, Created: f.TOTP.CreatedAt.UnixMilli(), Realm: s.realmTag})
	newRec, _ := json.Marshal(totpRecord{Secret: new, Created: f.TOTP.CreatedAt.UnixMilli(), Realm: s.realmTag})
	n, err := s.writeFactors(ctx, "swap totp secret", userID, false, notWaited, swapFieldScript, "totp", oldRec, newRec)
	return n == 1, err
}

// AcceptTOTPStep implements SecondFactors.
func (s *RedisStore) AcceptTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	n, err := s.writeFactors(ctx, "accept totp step", userID, false, notWaited, acceptStepScript, step)
	return n == 1, err
}

// RemoveTOTP implements SecondFactors. Like a revocation, it waits for
// replicas: a removed factor must not come back in a failover.
func (s *RedisStore) RemoveTOTP(ctx context.Context, userID string) error {
	n, err := s.writeFactors(ctx, "remove totp", userID, false, revocation, hdelScript, "totp", "step")
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// SetBackupCodes implements SecondFactors.
func (s *RedisStore) SetBackupCodes(ctx context.Context, userID string, hashes []string) error {
	if err := validateBackupHashes(hashes); err != nil {
		return err
	}
	args := make([]any, len(hashes))
	for i, h := range hashes {
		args[i] = "bc:" + h
	}
	_, err := s.writeFactors(ctx, "set backup codes", userID, true, revocation, setBackupCodesScript, args...)
	return err
}

// UseBackupCode implements SecondFactors.
func (s *RedisStore) UseBackupCode(ctx context.Context, userID, hash string) (bool, error) {
	if validateOwner(userID) != nil || validateFactorHash(hash) != nil {
		return false, nil
	}
	n, err := s.writeFactors(ctx, "use backup code", userID, false, notWaited, hdelScript, "bc:"+hash)
	return n == 1, err
}

// AddPasskey implements SecondFactors.
func (s *RedisStore) AddPasskey(ctx context.Context, userID string, p Passkey) error {
	if err := p.validate(); err != nil {
		return err
	}
	rec, _ := json.Marshal(passkeyRecord{Name: p.Name, Credential: p.Credential, BackupEligible: p.BackupEligible, Created: p.CreatedAt.UnixMilli(), Realm: s.realmTag})
	n, err := s.writeFactors(ctx, "add passkey", userID, true, notWaited, addPasskeyScript,
		p.ID, rec, passkeyUse(p.SignCount, p.LastUsedAt, p.BackupState), MaxPasskeysPerUser)
	switch {
	case err != nil:
		return err
	case n == 0:
		return ErrAccountExists
	case n < 0:
		return errTooManyPasskeys
	}
	return nil
}

// UsePasskey implements SecondFactors.
func (s *RedisStore) UsePasskey(ctx context.Context, userID, id string, signCount uint32, backupState bool, at time.Time) error {
	if validatePasskeyID(id) != nil {
		return ErrNotFound
	}
	bs := 0
	if backupState {
		bs = 1
	}
	n, err := s.writeFactors(ctx, "use passkey", userID, false, notWaited, usePasskeyScript, id, signCount, at.UnixMilli(), bs)
	switch {
	case err != nil:
		return err
	case n < 0:
		return ErrNotFound
	case n == 0:
		return ErrSignCount
	}
	return nil
}

// RemovePasskey implements SecondFactors; it waits for replicas as a
// revocation does.
func (s *RedisStore) RemovePasskey(ctx context.Context, userID, id string) error {
	if validatePasskeyID(id) != nil {
		return ErrNotFound
	}
	n, err := s.writeFactors(ctx, "remove passkey", userID, false, revocation, hdelScript, "pk:"+id, "pu:"+id)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// ResetFactors implements SecondFactors; it waits for replicas as a
// revocation does.
func (s *RedisStore) ResetFactors(ctx context.Context, userID string) error {
	if validateOwner(userID) != nil {
		return nil
	}
	return s.deleteWaited(ctx, "reset second factors", s.factorsKey(userID))
}

// hsetScript sets field ARGV[1] to ARGV[2].
var hsetScript = redis.NewScript(`redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1`)

// hdelScript deletes the fields ARGV and returns how many there were.
var hdelScript = redis.NewScript(`return redis.call('HDEL', KEYS[1], unpack(ARGV))`)

// swapFieldScript sets field ARGV[1] to ARGV[3] if it holds ARGV[2].
var swapFieldScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// acceptStepScript records TOTP step ARGV[1] if the user has TOTP and no
// step at or past it was accepted.
var acceptStepScript = redis.NewScript(`
if not redis.call('HGET', KEYS[1], 'totp') then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'step') or '0')
local step = tonumber(ARGV[1])
if step <= last then return 0 end
redis.call('HSET', KEYS[1], 'step', ARGV[1])
return 1
`)

// setBackupCodesScript replaces every bc: field with the fields ARGV.
var setBackupCodesScript = redis.NewScript(`
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 3) == 'bc:' then redis.call('HDEL', KEYS[1], all[i]) end
end
for i = 1, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], '1') end
return 1
`)

// addPasskeyScript adds passkey ARGV[1] (record ARGV[2], use ARGV[3])
// unless the user has it (0) or ARGV[4] passkeys already (-1).
var addPasskeyScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'pk:' .. ARGV[1]) then return 0 end
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 3) == 'pk:' then n = n + 1 end
end
if n >= tonumber(ARGV[4]) then return -1 end
redis.call('HSET', KEYS[1], 'pk:' .. ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], 'pu:' .. ARGV[1], ARGV[3])
return 1
`)

// usePasskeyScript moves passkey ARGV[1]'s counter to ARGV[2] and records
// its use at ARGV[3] ms with backup state ARGV[4]: -1 if there is no such
// passkey, 0 (nothing changed) if the counter does not advance.
var usePasskeyScript = redis.NewScript(`
if not redis.call('HGET', KEYS[1], 'pk:' .. ARGV[1]) then return -1 end
local use = redis.call('HGET', KEYS[1], 'pu:' .. ARGV[1]) or '0:0:0'
local stored = tonumber(string.match(use, '^(%d+):')) or 0
local got = tonumber(ARGV[2])
if not (got > stored or (got == 0 and stored == 0)) then return 0 end
redis.call('HSET', KEYS[1], 'pu:' .. ARGV[1], ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[4])
return 1
`)
