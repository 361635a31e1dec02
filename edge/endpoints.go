package edge

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// The gateway's own endpoints under /auth/.
const (
	pathSignOut = "/auth/signout"
	pathSession = "/auth/session"
	pathToken   = "/auth/token"
	// pathSessions lists the user's sessions; pathSessions/<id> ends one.
	pathSessions = "/auth/sessions"
	// pathAdmin is the site admin API's prefix.
	pathAdmin = "/auth/admin"
)

// serveEndpoint answers the gateway's endpoints; other /auth/ paths go on to
// the next handler (the app may have its own).
func (g *Gateway) serveEndpoint(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case pathSignOut:
		g.serveSignOut(w, r)
	case pathSession:
		g.serveSession(w, r)
	case pathToken:
		g.serveToken(w, r)
	case pathSessions:
		g.serveSessions(w, r, "")
	case pathHealth:
		g.serveHealth(w, r)
	default:
		if id, ok := strings.CutPrefix(r.URL.Path, pathSessions+"/"); ok {
			g.serveSessions(w, r, id)
			return true
		}
		if g.cfg.AdminAPI != nil && (r.URL.Path == pathAdmin || strings.HasPrefix(r.URL.Path, pathAdmin+"/")) {
			g.cfg.AdminAPI.ServeHTTP(w, r)
			return true
		}
		// /auth/signin, /auth/signin/<provider>, /auth/callback/<provider>,
		// the password's pages; /auth/account, /auth/link/<provider>
		return g.signIn != nil && (g.signIn.Handle(w, r) || g.account.Handle(w, r))
	}
	return true
}

// forgetDevices forgets the user's browsers (the device cookie) after
// "sign out everywhere": all of them (r nil), or all but r's (everywhere
// else). Without sign-in there are none.
func (g *Gateway) forgetDevices(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string) {
	if g.signIn != nil {
		g.signIn.ForgetDevices(ctx, w, r, userID)
	}
}

type sessionUser struct {
	ID            string `json:"id"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"emailVerified"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
}

type sessionInfo struct {
	ID        string `json:"id"`
	Provider  string `json:"provider,omitempty"`
	CreatedAt int64  `json:"createdAt"`
	ExpiresAt int64  `json:"expiresAt"`
}

// serveSession answers who is signed in, or 401. Times are Unix milliseconds.
func (g *Gateway) serveSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "read the session with GET")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	sess := g.jsonSession(w, r)
	if sess == nil {
		return
	}
	writeJSON(w, http.StatusOK, struct {
		User    sessionUser `json:"user"`
		Session sessionInfo `json:"session"`
	}{
		User: sessionUser{ID: sess.UserID, Email: sess.Profile.Email, EmailVerified: sess.Profile.EmailVerified,
			Name: sess.Profile.Name, Picture: sess.Profile.Picture},
		Session: sessionInfo{ID: sess.ID, Provider: sess.Provider,
			CreatedAt: sess.CreatedAt.UnixMilli(), ExpiresAt: sess.EndsAt(g.cfg.IdleTTL).UnixMilli()},
	})
}

// serveToken mints a fresh token for the browser's Convex client
// (fetchAccessToken). Same-origin only; never cached.
func (g *Gateway) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "fetch the token with GET")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if !g.sameOrigin(r) {
		writeJSONError(w, http.StatusForbidden, "cross_site", "tokens are only given to this site's own pages")
		return
	}
	sess := g.jsonSession(w, r)
	if sess == nil {
		return
	}
	t, err := g.mint(r.Context(), sess)
	if errors.Is(err, errGuestGone) {
		http.SetCookie(w, g.cfg.Cookie.forRequest(r).clear())
		writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "no signed-in session")
		return
	}
	if err != nil {
		g.cfg.Logger.Error("minting a token failed", zap.String("session_id", sess.ID), zap.Error(err))
		writeJSONError(w, http.StatusInternalServerError, "token_unavailable", "a token could not be issued: see the gateway's log")
		return
	}
	g.tokens.put(sess.ID, t)
	writeJSON(w, http.StatusOK, struct {
		Token     string `json:"token"`
		ExpiresAt int64  `json:"expiresAt"`
	}{t.token, t.expiresAt.UnixMilli()})
}

// sameOrigin refuses requests a browser marks as coming from another site.
// Clients that send neither header are not browsers and cannot be forged
// into sending a user's cookie.
func (g *Gateway) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return origin == requestOrigin(r) || origin == g.issuerOrigin
}

func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// serveSessions is the JSON session list for apps with their own UI, same
// origin only: GET /auth/sessions lists the user's sessions (session.View,
// oldest first), DELETE /auth/sessions ends all but the current one, and
// DELETE /auth/sessions/<id> ends one.
func (g *Gateway) serveSessions(w http.ResponseWriter, r *http.Request, id string) {
	w.Header().Set("Cache-Control", "no-store")
	allow := "DELETE"
	if id == "" {
		allow = "GET, DELETE"
	}
	if !(r.Method == http.MethodDelete || (id == "" && r.Method == http.MethodGet)) {
		w.Header().Set("Allow", allow)
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow+" on "+r.URL.Path)
		return
	}
	if !g.sameOrigin(r) {
		writeJSONError(w, http.StatusForbidden, "cross_site", "sessions are only shown to and changed by this site's own pages")
		return
	}
	sess := g.jsonSession(w, r)
	if sess == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
	defer cancel()
	unavailable := func(err error) {
		g.storeErrLog.Warn("the session list could not reach the session store", err)
		writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be changed right now: try again shortly")
	}
	switch {
	case r.Method == http.MethodGet:
		list, err := g.cfg.Store.List(ctx, sess.UserID)
		if err != nil {
			unavailable(err)
			return
		}
		views := make([]session.View, 0, len(list))
		for _, s := range list {
			views = append(views, session.NewView(s, s.ID == sess.ID))
		}
		writeJSON(w, http.StatusOK, struct {
			Sessions []session.View `json:"sessions"`
		}{views})
	case id == "":
		n, err := g.cfg.Store.DeleteUser(ctx, sess.UserID, sess.ID)
		if err != nil {
			unavailable(err)
			return
		}
		g.forgetDevices(ctx, w, r, sess.UserID)
		g.cfg.Logger.Info("signed out other sessions", zap.String("user_id", sess.UserID), zap.Int("sessions", n))
		writeJSON(w, http.StatusOK, struct {
			Ended int `json:"ended"`
		}{n})
	default:
		err := g.cfg.Store.DeleteByID(ctx, sess.UserID, id)
		if errors.Is(err, session.ErrNotFound) {
			writeJSONError(w, http.StatusNotFound, "session_not_found", "the user has no live session with that ID")
			return
		}
		if err != nil {
			unavailable(err)
			return
		}
		g.tokens.drop(id)
		g.cfg.Logger.Info("signed out a session", zap.String("user_id", sess.UserID), zap.String("session_id", id))
		if id == sess.ID {
			http.SetCookie(w, g.cfg.Cookie.forRequest(r).clear())
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// jsonSession is the request's session for the JSON endpoints. Without one
// it answers 503 (the store cannot be reached) or 401 and returns nil.
func (g *Gateway) jsonSession(w http.ResponseWriter, r *http.Request) *session.Session {
	_, sess, err := g.currentSession(w, r, g.cfg.Cookie.forRequest(r))
	switch {
	case err != nil:
		writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be checked right now: try again shortly")
		return nil
	case sess == nil:
		writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "no signed-in session")
		return nil
	}
	return sess
}
