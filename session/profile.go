package session

import "context"

// validateProfileOf checks a profile that sessions of userID will carry,
// as Create checks a new session's.
func validateProfileOf(userID string, p Profile) error {
	return NewSession{UserID: userID, Profile: p}.validate()
}

// SetProfile implements Store.
func (m *MemoryStore) SetProfile(ctx context.Context, userID string, p Profile) (int, error) {
	if err := validateProfileOf(userID, p); err != nil {
		return 0, err
	}
	now := m.opts.now()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, unavailable("set profile", errMemoryClosed)
	}
	var changed []string
	for id := range m.byUser[userID] {
		s := m.sessions[id]
		if s.expired(now, m.opts.IdleTTL) || s.Profile == p {
			continue
		}
		// Sessions handed out are clones: replace, never change in place.
		c := s.clone()
		c.Profile = p
		m.sessions[id] = c
		changed = append(changed, id)
	}
	m.mu.Unlock()
	m.hooks.revoked(changed...)
	return len(changed), nil
}
