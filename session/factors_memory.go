package session

import (
	"context"
	"slices"
	"sync"
	"time"
)

// memoryFactors keeps the in-process store's second factors; its zero
// value is ready.
type memoryFactors struct {
	mu    sync.Mutex
	users map[string]*memoryUserFactors
}

type memoryUserFactors struct {
	totp     *TOTP
	lastStep int64
	codes    map[string]struct{}
	passkeys map[string]Passkey
}

// getLocked returns userID's factors, creating them when create is set.
func (f *memoryFactors) getLocked(userID string, create bool) *memoryUserFactors {
	u := f.users[userID]
	if u == nil && create {
		if f.users == nil {
			f.users = make(map[string]*memoryUserFactors)
		}
		u = &memoryUserFactors{codes: map[string]struct{}{}, passkeys: map[string]Passkey{}}
		f.users[userID] = u
	}
	return u
}

func (f *memoryFactors) drop(userID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.users, userID)
}

// Factors implements SecondFactors.
func (m *MemoryStore) Factors(ctx context.Context, userID string) (*UserFactors, error) {
	if err := m.usersOpen("read second factors"); err != nil {
		return nil, err
	}
	f := &m.factors
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &UserFactors{}
	u := f.getLocked(userID, false)
	if u == nil {
		return out, nil
	}
	if u.totp != nil {
		t := *u.totp
		out.TOTP = &t
	}
	out.LastTOTPStep, out.BackupCodes = u.lastStep, len(u.codes)
	for _, p := range u.passkeys {
		p.Credential = slices.Clone(p.Credential)
		out.Passkeys = append(out.Passkeys, p)
	}
	sortPasskeys(out.Passkeys)
	return out, nil
}

// updateFactors runs fn on userID's factors under the lock, once the store and
// the user are known to exist.
func (m *MemoryStore) updateFactors(ctx context.Context, op, userID string, create bool, fn func(u *memoryUserFactors) error) error {
	if err := validateOwner(userID); err != nil {
		return err
	}
	if err := m.usersOpen(op); err != nil {
		return err
	}
	if create {
		if _, err := m.GetUser(ctx, userID); err != nil {
			return err
		}
	}
	f := &m.factors
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.getLocked(userID, create)
	if u == nil {
		return ErrNotFound
	}
	return fn(u)
}

// SetTOTP implements SecondFactors.
func (m *MemoryStore) SetTOTP(ctx context.Context, userID string, t TOTP) error {
	if err := t.validate(); err != nil {
		return err
	}
	return m.updateFactors(ctx, "set totp", userID, true, func(u *memoryUserFactors) error {
		u.totp = &TOTP{Secret: t.Secret, CreatedAt: t.CreatedAt.UTC().Truncate(time.Millisecond)}
		return nil
	})
}

// SwapTOTPSecret implements SecondFactors.
func (m *MemoryStore) SwapTOTPSecret(ctx context.Context, userID, old, new string) (bool, error) {
	if err := (TOTP{Secret: new}).validate(); err != nil {
		return false, err
	}
	swapped := false
	err := m.updateFactors(ctx, "swap totp secret", userID, false, func(u *memoryUserFactors) error {
		if u.totp != nil && u.totp.Secret == old {
			u.totp.Secret, swapped = new, true
		}
		return nil
	})
	if err == ErrNotFound {
		err = nil
	}
	return swapped, err
}

// AcceptTOTPStep implements SecondFactors.
func (m *MemoryStore) AcceptTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	ok := false
	err := m.updateFactors(ctx, "accept totp step", userID, false, func(u *memoryUserFactors) error {
		if u.totp != nil && step > u.lastStep {
			u.lastStep, ok = step, true
		}
		return nil
	})
	if err == ErrNotFound {
		err = nil
	}
	return ok, err
}

// RemoveTOTP implements SecondFactors.
func (m *MemoryStore) RemoveTOTP(ctx context.Context, userID string) error {
	return m.updateFactors(ctx, "remove totp", userID, false, func(u *memoryUserFactors) error {
		if u.totp == nil {
			return ErrNotFound
		}
		u.totp, u.lastStep = nil, 0
		return nil
	})
}

// SetBackupCodes implements SecondFactors.
func (m *MemoryStore) SetBackupCodes(ctx context.Context, userID string, hashes []string) error {
	if err := validateBackupHashes(hashes); err != nil {
		return err
	}
	return m.updateFactors(ctx, "set backup codes", userID, true, func(u *memoryUserFactors) error {
		u.codes = make(map[string]struct{}, len(hashes))
		for _, h := range hashes {
			u.codes[h] = struct{}{}
		}
		return nil
	})
}

// UseBackupCode implements SecondFactors.
func (m *MemoryStore) UseBackupCode(ctx context.Context, userID, hash string) (bool, error) {
	if validateFactorHash(hash) != nil {
		return false, nil
	}
	used := false
	err := m.updateFactors(ctx, "use backup code", userID, false, func(u *memoryUserFactors) error {
		if _, ok := u.codes[hash]; ok {
			delete(u.codes, hash)
			used = true
		}
		return nil
	})
	if err == ErrNotFound {
		err = nil
	}
	return used, err
}

// AddPasskey implements SecondFactors.
func (m *MemoryStore) AddPasskey(ctx context.Context, userID string, p Passkey) error {
	if err := p.validate(); err != nil {
		return err
	}
	return m.updateFactors(ctx, "add passkey", userID, true, func(u *memoryUserFactors) error {
		if _, ok := u.passkeys[p.ID]; ok {
			return ErrAccountExists
		}
		if len(u.passkeys) >= MaxPasskeysPerUser {
			return errTooManyPasskeys
		}
		p.Credential = slices.Clone(p.Credential)
		p.CreatedAt = p.CreatedAt.UTC().Truncate(time.Millisecond)
		p.LastUsedAt = p.LastUsedAt.UTC().Truncate(time.Millisecond)
		u.passkeys[p.ID] = p
		return nil
	})
}

// UsePasskey implements SecondFactors.
func (m *MemoryStore) UsePasskey(ctx context.Context, userID, id string, signCount uint32, backupState bool, at time.Time) error {
	return m.updateFactors(ctx, "use passkey", userID, false, func(u *memoryUserFactors) error {
		p, ok := u.passkeys[id]
		if !ok {
			return ErrNotFound
		}
		if !signCountAdvances(p.SignCount, signCount) {
			return ErrSignCount
		}
		p.SignCount, p.BackupState, p.LastUsedAt = signCount, backupState, at.UTC().Truncate(time.Millisecond)
		u.passkeys[id] = p
		return nil
	})
}

// RemovePasskey implements SecondFactors.
func (m *MemoryStore) RemovePasskey(ctx context.Context, userID, id string) error {
	return m.updateFactors(ctx, "remove passkey", userID, false, func(u *memoryUserFactors) error {
		if _, ok := u.passkeys[id]; !ok {
			return ErrNotFound
		}
		delete(u.passkeys, id)
		return nil
	})
}

// ResetFactors implements SecondFactors.
func (m *MemoryStore) ResetFactors(ctx context.Context, userID string) error {
	if err := m.usersOpen("reset second factors"); err != nil {
		return err
	}
	m.factors.drop(userID)
	return nil
}
