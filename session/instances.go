package session

import (
	"context"
	"errors"
	"strings"
	"time"
)

// InstanceRegistry records which Caddy storage each live gateway instance
// of the realm uses. Instances of one realm must share a storage (it holds
// the generated signing keys and the OAuth flow-cookie keys), so one whose
// storage differs from a live instance's can refuse to start.
type InstanceRegistry interface {
	// RegisterInstance records that instance uses storage until ttl from
	// now, replacing the instance's earlier record. If another live
	// instance recorded a different storage, it records nothing and returns
	// that storage.
	RegisterInstance(ctx context.Context, instance, storage string, ttl time.Duration) (conflict string, err error)
	// UnregisterInstance removes the instance's record of storage.
	UnregisterInstance(ctx context.Context, instance, storage string) error
}

// MaxInstanceIDBytes bounds instance and storage IDs.
const MaxInstanceIDBytes = 64

// instanceMember is the record of instance using storage: IDs hold no
// space, so the first one splits them.
func instanceMember(instance, storage string) string { return instance + " " + storage }

func validateInstance(instance, storage string, ttl time.Duration) error {
	for _, id := range []string{instance, storage} {
		if id == "" || len(id) > MaxInstanceIDBytes || strings.ContainsAny(id, " \t\r\n") {
			return errors.New("instance and storage IDs are 1 to 64 bytes without spaces")
		}
	}
	if ttl <= 0 {
		return errors.New("an instance record needs a positive TTL")
	}
	return nil
}

// memoryInstances is the in-process registry: member -> expiry.
type memoryInstances map[string]time.Time

// RegisterInstance implements InstanceRegistry.
func (m *MemoryStore) RegisterInstance(ctx context.Context, instance, storage string, ttl time.Duration) (string, error) {
	if err := validateInstance(instance, storage, ttl); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", unavailable("register instance", errMemoryClosed)
	}
	now := m.opts.now()
	for member, exp := range m.instances {
		inst, st, _ := strings.Cut(member, " ")
		switch {
		case !now.Before(exp):
			delete(m.instances, member)
		case inst == instance:
			delete(m.instances, member)
		case st != storage:
			return st, nil
		}
	}
	m.instances[instanceMember(instance, storage)] = now.Add(ttl)
	return "", nil
}

// UnregisterInstance implements InstanceRegistry.
func (m *MemoryStore) UnregisterInstance(ctx context.Context, instance, storage string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.instances, instanceMember(instance, storage))
	return nil
}
