// Package sharedstorage makes the gateway instances of one realm agree on
// Caddy's storage, which holds the generated signing keys and the OAuth
// flow-cookie keys: each storage gets a random identity, each process
// records in the session store which storage it uses while it runs, and a
// process whose storage differs from a live instance's refuses to start.
// A key rotation changes nothing here: the identity is not key material.
package sharedstorage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/ratelog"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// IDName is the storage key of the storage's identity.
const IDName = "convex_auth/storage_id"

// RecordTTL is how long an instance's record outlives its last refresh: a
// process that stopped without leaving (killed, crashed) stops counting
// after it.
const RecordTTL = 30 * time.Second

// refreshEvery leaves two missed refreshes before a live record lapses.
const refreshEvery = RecordTTL / 3

// storeTimeout bounds one registry call, as a request's store calls are.
const storeTimeout = 2 * time.Second

// processID names this process in every registry: a reload that changes
// the storage replaces the process's own record instead of conflicting
// with it.
var processID = func() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}()

// LoadOrCreateID returns the storage's identity, making it on first use
// under the storage's lock so that instances starting together agree.
func LoadOrCreateID(ctx context.Context, st issuer.KeyStorage) (string, error) {
	if id, err := loadID(ctx, st); err == nil || !notFound(err) {
		return id, err
	}
	if err := st.Lock(ctx, IDName); err != nil {
		return "", fmt.Errorf("lock %s in Caddy's storage: %w", IDName, err)
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), IDName) }()
	id, err := loadID(ctx, st)
	if !notFound(err) {
		return id, err
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id = hex.EncodeToString(b)
	if err := st.Store(ctx, IDName, []byte(id)); err != nil {
		return "", fmt.Errorf("write %s in Caddy's storage: %w", IDName, err)
	}
	return id, nil
}

// loadID reads the identity; an error notFound accepts when there is none.
func loadID(ctx context.Context, st issuer.KeyStorage) (string, error) {
	b, err := st.Load(ctx, IDName)
	switch {
	case err != nil:
		return "", fmt.Errorf("read %s in Caddy's storage: %w", IDName, err)
	case len(b) == 0 || len(b) > session.MaxInstanceIDBytes || !isHex(b):
		return "", fmt.Errorf("%s in Caddy's storage is damaged (want 32 hex digits): delete it and restart every instance sharing this storage", IDName)
	}
	return string(b), nil
}

func notFound(err error) bool {
	return errors.Is(err, issuer.ErrKeyNotFound) || errors.Is(err, fs.ErrNotExist)
}

func isHex(b []byte) bool {
	_, err := hex.DecodeString(string(b))
	return err == nil
}

// ConflictError is a storage that another live instance of the realm uses.
type ConflictError struct {
	Realm string
	Mine  string // this instance's storage identity
	Other string // the other instance's
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("another running instance of realm %q uses a different Caddy storage (identity %s; this one's is %s): "+
		"instances of one realm must share Caddy's storage, which holds the generated signing keys and the OAuth flow-cookie keys. "+
		"Give every instance the same storage: the global storage option with a shared backend (such as a Redis storage module), "+
		"or storage file_system <dir> on a volume every instance mounts; or copy one storage to the others with caddy storage export and import. "+
		"An instance that uses no OAuth provider needs no shared storage once signing_key is set on every instance. "+
		"A stopped instance stops counting %s after its last refresh",
		e.Realm, e.Other, e.Mine, RecordTTL)
}

// Member keeps this process's record in one registry fresh until Leave.
type Member struct {
	reg   session.InstanceRegistry
	realm string
	log   *ratelog.Log
	keys  issuer.KeyStorage // where the identity is read again at each refresh

	mu      sync.Mutex
	storage string
	refs    int
	stop    chan struct{}
	done    chan struct{}
}

var (
	membersMu sync.Mutex
	members   = map[session.InstanceRegistry]*Member{}
)

// Join records in reg (the realm's store) that this process uses the
// storage st, by its identity, and keeps the record fresh until as many
// Leave calls as Joins. If another live instance of the realm uses a
// different storage it records nothing and returns a *ConflictError. A
// store that does not answer does not stop the start: the record is made,
// and a conflict logged, once it answers.
func Join(ctx context.Context, reg session.InstanceRegistry, realm string, st issuer.KeyStorage, logger *zap.Logger) (*Member, error) {
	storage, err := LoadOrCreateID(ctx, st)
	if err != nil {
		return nil, err
	}
	membersMu.Lock()
	defer membersMu.Unlock()
	m := members[reg]
	if m == nil {
		m = &Member{reg: reg, realm: realm, log: ratelog.New(logger, time.Minute)}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.register(ctx, storage); err != nil {
		var conflict *ConflictError
		if errors.As(err, &conflict) {
			return nil, err
		}
		logger.Warn("cannot check now that every instance of the realm shares Caddy's storage; retrying in the background", zap.Error(err))
	}
	m.storage, m.keys = storage, st
	m.refs++
	if m.refs == 1 {
		members[reg] = m
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.refreshLoop()
	}
	return m, nil
}

// register records the process's storage once.
func (m *Member) register(ctx context.Context, storage string) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	other, err := m.reg.RegisterInstance(ctx, processID, storage, RecordTTL)
	switch {
	case err != nil:
		return err
	case other != "":
		return &ConflictError{Realm: m.realm, Mine: storage, Other: other}
	}
	return nil
}

func (m *Member) refreshLoop() {
	defer close(m.done)
	t := time.NewTicker(refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.mu.Lock()
		// The identity is read again: a storage whose identity was lost
		// (deleted, restored from an older copy) is recorded as it now is,
		// as the instances restarting on it will record it.
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		if id, err := LoadOrCreateID(ctx, m.keys); err == nil {
			m.storage = id
		}
		cancel()
		err := m.register(context.Background(), m.storage)
		m.mu.Unlock()
		if err != nil {
			m.log.Warn("the realm's instances may not share Caddy's storage", err)
		}
	}
}

// Leave ends one Join; the last one stops refreshing and removes the
// process's record, so a replacement with another storage can start at once.
func (m *Member) Leave() {
	membersMu.Lock()
	m.mu.Lock()
	m.refs--
	last := m.refs == 0
	if last {
		delete(members, m.reg)
	}
	storage := m.storage
	m.mu.Unlock()
	membersMu.Unlock()
	if !last {
		return
	}
	close(m.stop)
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	_ = m.reg.UnregisterInstance(ctx, processID, storage)
}
