package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/convex-auth/caddy-convex-auth/internal/sharedstorage"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// recordStorageUse records in the realm's store which Caddy storage this
// instance uses, when it keeps keys there (a generated signing key, OAuth
// flow keys), and refuses to start when another running instance of the
// realm uses another storage: the two would sign with different keys and
// could not open each other's flow cookies.
func (h *Handler) recordStorageUse(ctx caddy.Context, st session.Store) error {
	usesStorage := h.SigningKey == nil || (h.signInConfig != nil && h.signInConfig.FlowKeys != nil)
	reg, ok := st.(session.InstanceRegistry)
	if !usesStorage || !ok {
		return nil
	}
	var err error
	if h.storageUse, err = sharedstorage.Join(ctx, reg, h.realm, certmagicKeyStorage{ctx.Storage()}, h.logger); err != nil {
		return fmt.Errorf("convex_auth: %w", err)
	}
	return nil
}
