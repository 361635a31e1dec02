package caddymodule

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// The gateway's own endpoints under /auth/.
const (
	pathSignOut = "/auth/signout"
	pathSession = "/auth/session"
	pathToken   = "/auth/token"
)

// maxFormBytes bounds the body of a sign-out form.
const maxFormBytes = 16 << 10

// serveEndpoint answers the gateway's endpoints; other /auth/ paths go on to
// the next handler (the app may have its own).
func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case pathSignOut:
		h.serveSignOut(w, r)
	case pathSession:
		h.serveSession(w, r)
	case pathToken:
		h.serveToken(w, r)
	default:
		// /auth/signin, /auth/signin/<provider>, /auth/callback/<provider>
		return h.serveSignIn(w, r)
	}
	return true
}

// currentSession looks up the request's session. found is false with a nil
// error for no or an invalid cookie (which is then cleared); a non-nil error
// means the store could not be asked.
func (h *Handler) currentSession(w http.ResponseWriter, r *http.Request, cs requestCookie) (token string, sess *session.Session, err error) {
	token, ok := readCookie(r, cs.name)
	if !ok {
		return "", nil, nil
	}
	if sess, err = h.lookupSession(w, r, cs, token); sess == nil {
		return "", nil, err
	}
	return token, sess, nil
}

// lookupSession finds the session behind a cookie token. An unknown, expired
// or forged one is cleared in the browser and gives (nil, nil); a non-nil
// error means the store could not be asked.
func (h *Handler) lookupSession(w http.ResponseWriter, r *http.Request, cs requestCookie, token string) (*session.Session, error) {
	// No storeContext: the store bounds a lookup that leaves its cache
	// (session.DefaultLookupTimeout), and a cache hit then needs no timer.
	sess, err := h.store.Lookup(r.Context(), token)
	if errors.Is(err, session.ErrNotFound) {
		http.SetCookie(w, cs.clear())
		return nil, nil
	}
	if err != nil {
		h.storeErrLog.warn("session store unreachable: protected paths answer 503, open paths go upstream without a token", err)
		return nil, err
	}
	return sess, nil
}

// serveSignOut ends the current session, or with all=1 every session of its
// user, and clears the cookie. Same-origin only.
func (h *Handler) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "sign out with POST")
		return
	}
	if !h.sameOrigin(r) {
		writeJSONError(w, http.StatusForbidden, "cross_site", "sign-out must come from this site's own pages")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "bad_form", "the sign-out form could not be read")
		return
	}
	cs := h.cookie.forRequest(r)
	token, sess, err := h.currentSession(w, r, cs)
	if err != nil {
		writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be changed right now: try again shortly")
		return
	}
	if sess != nil {
		ctx, cancel := storeContext(r)
		defer cancel()
		if r.Form.Get("all") == "1" {
			_, err = h.store.DeleteUser(ctx, sess.UserID, "")
		} else {
			err = h.store.Delete(ctx, token)
		}
		if err != nil {
			h.storeErrLog.warn("sign-out could not reach the session store", err)
			writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be changed right now: try again shortly")
			return
		}
		h.tokens.drop(sess.ID)
		h.logger.Info("signed out", zap.String("user_id", sess.UserID), zap.String("session_id", sess.ID), zap.Bool("all", r.Form.Get("all") == "1"))
	}
	http.SetCookie(w, cs.clear())
	w.Header().Set("Cache-Control", "no-store")
	if isNavigation(r) || acceptsHTMLForm(r) {
		http.Redirect(w, r, h.AfterSignOut, http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// acceptsHTMLForm is a form POST from a page (navigations are GET only).
func acceptsHTMLForm(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" ||
		(r.Header.Get("Sec-Fetch-Mode") == "" && containsFold(r.Header.Get("Accept"), "text/html"))
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
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "read the session with GET")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	_, sess, err := h.currentSession(w, r, h.cookie.forRequest(r))
	switch {
	case err != nil:
		writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be checked right now: try again shortly")
	case sess == nil:
		writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "no signed-in session")
	default:
		writeJSON(w, http.StatusOK, struct {
			User    sessionUser `json:"user"`
			Session sessionInfo `json:"session"`
		}{
			User: sessionUser{ID: sess.UserID, Email: sess.Profile.Email, EmailVerified: sess.Profile.EmailVerified,
				Name: sess.Profile.Name, Picture: sess.Profile.Picture},
			Session: sessionInfo{ID: sess.ID, Provider: sess.Provider,
				CreatedAt: sess.CreatedAt.UnixMilli(), ExpiresAt: h.sessionEnd(sess).UnixMilli()},
		})
	}
}

// sessionEnd is when the session ends if unused: the earlier of its
// absolute expiry and its idle expiry.
func (h *Handler) sessionEnd(sess *session.Session) time.Time {
	idle := sess.LastUsedAt.Add(time.Duration(h.IdleTTL))
	if idle.Before(sess.ExpiresAt) {
		return idle
	}
	return sess.ExpiresAt
}

// serveToken mints a fresh token for the browser's Convex client
// (fetchAccessToken). Same-origin only; never cached.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "fetch the token with GET")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if !h.sameOrigin(r) {
		writeJSONError(w, http.StatusForbidden, "cross_site", "tokens are only given to this site's own pages")
		return
	}
	_, sess, err := h.currentSession(w, r, h.cookie.forRequest(r))
	switch {
	case err != nil:
		writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be checked right now: try again shortly")
		return
	case sess == nil:
		writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "no signed-in session")
		return
	}
	t, err := h.mint(sess)
	if err != nil {
		h.logger.Error("minting a token failed", zap.String("session_id", sess.ID), zap.Error(err))
		writeJSONError(w, http.StatusInternalServerError, "token_unavailable", "a token could not be issued: see the gateway's log")
		return
	}
	h.tokens.put(sess.ID, t)
	writeJSON(w, http.StatusOK, struct {
		Token     string `json:"token"`
		ExpiresAt int64  `json:"expiresAt"`
	}{t.token, t.expiresAt.UnixMilli()})
}

// sameOrigin refuses requests a browser marks as coming from another site.
// Clients that send neither header are not browsers and cannot be forged
// into sending a user's cookie.
func (h *Handler) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return origin == requestOrigin(r) || origin == h.issuerOrigin()
}

func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *Handler) issuerOrigin() string {
	u, err := url.Parse(h.Issuer)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
