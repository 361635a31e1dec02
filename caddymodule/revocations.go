package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/convex-auth/caddy-convex-auth/edge"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// storageJournal keeps the sign-outs waiting for the session store
// (edge.RevocationJournal) in Caddy's storage: one key per session under
// the realm's directory, so that the instances sharing the storage see
// each other's and a restart keeps them.
type storageJournal struct {
	storage certmagic.Storage
	dir     string
}

// revocationsDir is the storage directory of realm's pending sign-outs.
func revocationsDir(realm string) string {
	return "convex_auth/revocations/" + session.RealmTag(realm)
}

func (j storageJournal) key(sessionID string) string {
	return j.dir + "/" + sessionID + ".json"
}

// Put implements edge.RevocationJournal.
func (j storageJournal) Put(ctx context.Context, r edge.PendingRevocation) error {
	if !r.Valid() {
		return errors.New("a pending revocation needs a valid session reference")
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := j.storage.Store(ctx, j.key(r.SessionID), b); err != nil {
		return fmt.Errorf("keeping a sign-out in Caddy's storage: %w", err)
	}
	return nil
}

// Remove implements edge.RevocationJournal.
func (j storageJournal) Remove(ctx context.Context, sessionID string) error {
	return j.storage.Delete(ctx, j.key(sessionID))
}

// List implements edge.RevocationJournal. A key that vanished meanwhile
// (applied by another instance) or does not parse is left out.
func (j storageJournal) List(ctx context.Context) ([]edge.PendingRevocation, error) {
	keys, err := j.storage.List(ctx, j.dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the sign-outs kept in Caddy's storage: %w", err)
	}
	var out []edge.PendingRevocation
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		b, err := j.storage.Load(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s from Caddy's storage: %w", path.Base(k), err)
		}
		var r edge.PendingRevocation
		if json.Unmarshal(b, &r) != nil || !r.Valid() || j.key(r.SessionID) != k {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

var _ edge.RevocationJournal = storageJournal{}
