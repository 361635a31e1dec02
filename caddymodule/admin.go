package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/control"
	"github.com/convex-auth/caddy-convex-auth/events"
	"github.com/convex-auth/caddy-convex-auth/session"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// adminPrefix is where the operator API lives on Caddy's admin endpoint.
const adminPrefix = "/convex-auth"

// siteAdminPrefix is where the site admin API lives on a site.
const siteAdminPrefix = "/auth/admin"

// liveRealms are the realms of this process's provisioned handlers; a
// reload provisions the new config's handlers before it cleans up the old
// ones, so the registry stays right across it.
var liveRealms = control.NewRegistry()

// AdminAPIConfig enables the site admin API at <site>/auth/admin/, for the
// app's backend (a Convex action) to end, ban and delete users.
type AdminAPIConfig struct {
	// Secret is the Bearer token callers send, at least 32 bytes; use a
	// placeholder such as {env.CONVEX_AUTH_ADMIN_SECRET}. Required: there is
	// no default, and without admin_api the site API is off.
	Secret string `json:"secret,omitempty"`
}

// secret resolves the configured secret's placeholders and checks it.
func (c *AdminAPIConfig) secret() (string, error) {
	if c.Secret == "" {
		return "", errors.New("convex_auth: admin_api needs a secret: admin_api { secret {env.CONVEX_AUTH_ADMIN_SECRET} }")
	}
	s := caddy.NewReplacer().ReplaceKnown(c.Secret, "")
	if err := control.CheckSecret(s); err != nil {
		return "", fmt.Errorf("convex_auth: %w", err)
	}
	return s, nil
}

func (c *AdminAPIConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("admin_api takes a block: admin_api { secret {env.CONVEX_AUTH_ADMIN_SECRET} }")
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("admin_api %s is set more than once: keep one", sub)
		}
		seen[sub] = true
		switch sub {
		case "secret":
			if err := oneArg(d, &c.Secret); err != nil {
				return err
			}
		default:
			return d.Errf("unknown admin_api option %q: the only one is secret", sub)
		}
	}
	if c.Secret == "" {
		return d.Errf("admin_api needs a secret: admin_api { secret {env.CONVEX_AUTH_ADMIN_SECRET} }")
	}
	return nil
}

// userStore is the handler's store of users (both stores keep them).
func (h *Handler) userStore() session.UserStore {
	st := h.store
	if m, ok := st.(meteredStore); ok {
		st = m.Store
	}
	users, _ := st.(session.UserStore)
	return users
}

// controlRealm is the handler's realm as the control package sees it.
func (h *Handler) controlRealm() (control.Realm, error) {
	st := h.store
	if m, ok := st.(meteredStore); ok {
		st = m.Store
	}
	users, ok := st.(control.Users)
	if !ok {
		return control.Realm{}, fmt.Errorf("convex_auth: the session store %T keeps no users", st)
	}
	realm := control.Realm{Name: h.realm, Issuers: []string{h.Issuer}, Sessions: h.store, Users: users}
	if h.Claims != nil {
		// The gateway is built after the realm is registered.
		realm.RefreshClaims = func(ctx context.Context, userID string) error {
			return h.gateway.RefreshClaims(ctx, userID)
		}
	}
	if f, ok := st.(session.SecondFactors); ok && h.signInConfig != nil {
		realm.Factors = f
	}
	if dead, ok := DeadLettersHandler(h.realm); ok {
		realm.DeadLetters = dead
	}
	return realm, nil
}

// provisionControl registers the handler's realm for the operator API and
// builds the site admin API when it is enabled.
func (h *Handler) provisionControl() (http.Handler, error) {
	realm, err := h.controlRealm()
	if err != nil {
		return nil, err
	}
	h.releaseRealm = liveRealms.Add(h.storeKey, realm, h.Issuer)
	if h.AdminAPI == nil {
		return nil, nil
	}
	secret, err := h.AdminAPI.secret()
	if err != nil {
		return nil, err
	}
	api, err := control.NewHandler(control.Config{
		Prefix: siteAdminPrefix,
		Realms: func() []control.Realm { return []control.Realm{realm} },
		Secret: secret,
		Logger: h.logger.Named("admin_api"),
	})
	if err != nil {
		return nil, fmt.Errorf("convex_auth: admin_api: %w", err)
	}
	h.logger.Info("site admin API enabled", zap.String("path", siteAdminPrefix+"/"))
	return api, nil
}

// AdminAPI is the operator API on Caddy's admin endpoint, under
// /convex-auth/: the same operations as the site admin API, for every live
// realm. Caddy loads every admin.api module into its admin endpoint; this
// one has no config.
type AdminAPI struct {
	handler *control.Handler
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.convex_auth",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision builds the handler over the process's live realms.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	var err error
	a.handler, err = control.NewHandler(control.Config{
		Prefix: adminPrefix,
		Realms: liveRealms.Realms,
		// Admin modules get an unnamed logger; name it so the audit lines
		// can be found.
		Logger: caddy.Log().Named("admin.api.convex_auth"),
		// Importing users is the operator's: never on the site API.
		Import: true,
	})
	return err
}

// Routes implements caddy.AdminRouter.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: adminPrefix + "/",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			a.handler.ServeHTTP(w, r)
			return nil
		}),
	}}
}

// Interface guards
var (
	_ caddy.Provisioner = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)

// sessionStoreKeepsUsers checks at compile time that both stores serve the
// control package.
var (
	_ control.Users = (*session.MemoryStore)(nil)
	_ control.Users = (*session.RedisStore)(nil)
	// The events wrapper keeps every optional store interface the
	// sign-in and the control package look for.
	_ control.Users               = (*events.Store)(nil)
	_ session.AccountSecretSetter = (*events.Store)(nil)
	_ session.Limiter             = (*events.Store)(nil)
	_ session.UserImporter        = (*events.Store)(nil)
)
