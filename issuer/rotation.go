package issuer

import "time"

// keySet is an immutable snapshot of the issuer's keys and the documents
// rendered from them. Changes build a new snapshot and swap the pointer, so
// Mint never waits for rotation.
type keySet struct {
	signing   *signingKey
	next      *Key         // published, not signing yet
	previous  []retiredKey // newest first, published until their last token expires
	staleAt   time.Time    // earliest previous expiry: documents need re-rendering then; zero if none
	jwks      []byte
	discovery []byte
}

// retiredKey is a former signing key, published until expiresAt: its
// retirement plus the token TTL, when the last token it signed expires.
type retiredKey struct {
	key       *Key
	expiresAt time.Time
}

// buildKeySet drops previous keys expired at now and renders the documents.
func (i *Issuer) buildKeySet(signing *signingKey, next *Key, previous []retiredKey, now time.Time) *keySet {
	s := &keySet{signing: signing, next: next}
	published := []*Key{signing.key}
	seen := map[string]bool{signing.key.kid: true}
	if next != nil && !seen[next.kid] {
		published = append(published, next)
		seen[next.kid] = true
	}
	for _, p := range previous {
		if !now.Before(p.expiresAt) || seen[p.key.kid] {
			continue
		}
		seen[p.key.kid] = true
		s.previous = append(s.previous, p)
		published = append(published, p.key)
		if s.staleAt.IsZero() || p.expiresAt.Before(s.staleAt) {
			s.staleAt = p.expiresAt
		}
	}
	s.jwks = renderJWKS(published)
	s.discovery = i.renderDiscovery(published)
	return s
}

// current returns the snapshot, first dropping previous keys whose tokens
// have all expired so the documents stop publishing them.
func (i *Issuer) current() *keySet {
	s := i.keys.Load()
	if !s.staleAt.IsZero() && !i.cfg.Now().Before(s.staleAt) {
		i.PruneRetired()
		s = i.keys.Load()
	}
	return s
}

// SigningKey returns the key tokens are signed with now.
func (i *Issuer) SigningKey() *Key { return i.keys.Load().signing.key }

// PruneRetired drops previous keys whose tokens have all expired.
func (i *Issuer) PruneRetired() {
	i.mu.Lock()
	defer i.mu.Unlock()
	cur := i.keys.Load()
	now := i.cfg.Now()
	if cur.staleAt.IsZero() || now.Before(cur.staleAt) {
		return
	}
	i.keys.Store(i.buildKeySet(cur.signing, cur.next, cur.previous, now))
}
