package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/authz"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// pathSessionContext switches the session's context (its active
// organization).
const pathSessionContext = "/auth/session/context"

// maxContextBody bounds a context switch's body.
const maxContextBody = 4 << 10

// serveSessionContext is POST /auth/session/context with a JSON object of
// the allowed context keys, e.g. {"org":"<id>"}; same-origin only. The
// claims query is asked in that context: null refuses it (403, nothing
// changes); otherwise the context and the claims are stored with the
// session, on every instance, and its next token carries them.
func (g *Gateway) serveSessionContext(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if g.claims == nil || len(g.claims.ContextKeys()) == 0 {
		writeJSONError(w, http.StatusNotFound, "no_session_context", "this site keeps no session context: list its keys in the claims block (context org)")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "switch the context with POST")
		return
	}
	if !g.sameOrigin(r) {
		writeJSONError(w, http.StatusForbidden, "cross_site", "the session's context is only changed by this site's own pages")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxContextBody))
	if err != nil {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the context is too large")
		return
	}
	sess := g.jsonSession(w, r)
	if sess == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout+authz.DefaultQueryTimeout)
	defer cancel()
	claims, err := g.claims.SwitchContext(ctx, sess, body)
	switch {
	case errors.Is(err, authz.ErrBadContext):
		writeJSONError(w, http.StatusBadRequest, "bad_context", err.Error())
	case errors.Is(err, authz.ErrContextRefused):
		writeJSONError(w, http.StatusForbidden, "context_refused", "the app refused this context for this user: nothing changed")
	case errors.Is(err, session.ErrNotFound):
		writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "no signed-in session")
	case err != nil:
		g.storeErrLog.Warn("a context switch failed", err)
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "claims_unavailable", "the context cannot be switched right now: try again shortly")
	default:
		g.cfg.Logger.Info("switched the session's context", zap.String("user_id", sess.UserID), zap.String("session_id", sess.ID))
		writeJSON(w, http.StatusOK, struct {
			Claims json.RawMessage `json:"claims"`
		}{claims.JSON()})
	}
}
