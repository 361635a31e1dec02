package control

import (
	"slices"
	"sync"
)

// Registry holds the live realms of a process. Handlers add their realm
// when they are provisioned and release it when they are cleaned up; a
// config reload provisions the new handlers before it cleans up the old
// ones, so a realm that stays is never missing in between, and one that
// goes is gone once its last handler is.
type Registry struct {
	mu      sync.Mutex
	entries map[string]*registryEntry
}

type registryEntry struct {
	realm   Realm
	refs    int
	issuers map[string]int
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{entries: make(map[string]*registryEntry)}
}

// Add registers one handler's use of the realm kept by the store named
// key (handlers sharing a store share a realm) and returns the function
// that releases it; calling that more than once releases once.
func (g *Registry) Add(key string, realm Realm, issuer string) (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.entries[key]
	if e == nil {
		e = &registryEntry{realm: realm, issuers: make(map[string]int)}
		g.entries[key] = e
	}
	e.refs++
	e.issuers[issuer]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			e.refs--
			if e.issuers[issuer]--; e.issuers[issuer] <= 0 {
				delete(e.issuers, issuer)
			}
			if e.refs <= 0 && g.entries[key] == e {
				delete(g.entries, key)
			}
		})
	}
}

// Realms returns the live realms, sorted by name. Stores of the same realm
// (handlers that differ in session lifetimes) show as one realm: with Redis
// they hold the same records.
func (g *Registry) Realms() []Realm {
	g.mu.Lock()
	defer g.mu.Unlock()
	keys := make([]string, 0, len(g.entries))
	for k := range g.entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	byName := make(map[string]*Realm)
	var names []string
	for _, k := range keys {
		e := g.entries[k]
		rl := byName[e.realm.Name]
		if rl == nil {
			c := e.realm
			c.Issuers = nil
			rl = &c
			byName[c.Name] = rl
			names = append(names, c.Name)
		}
		for iss := range e.issuers {
			if !slices.Contains(rl.Issuers, iss) {
				rl.Issuers = append(rl.Issuers, iss)
			}
		}
	}
	slices.Sort(names)
	out := make([]Realm, 0, len(names))
	for _, n := range names {
		rl := byName[n]
		slices.Sort(rl.Issuers)
		out = append(out, *rl)
	}
	return out
}
