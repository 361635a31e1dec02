package caddymodule

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Response headers by which a trusted upstream signs a user in or out.
const (
	headerUpstreamSignIn  = "Convex-Auth-Sign-In"
	headerUpstreamSignOut = "Convex-Auth-Sign-Out"
)

// serveAuthenticated is the request path: cookie → session → token →
// injected into the request → next handler. Protected paths without a
// session are refused here.
func (h *Handler) serveAuthenticated(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	cs := h.cookie.forRequest(r)
	protected := h.isProtected(r)
	cookieToken, hasCookie := readCookie(r, cs.name)
	if !h.Cookie.ForwardToUpstream {
		removeCookies(r, cs.name)
	}

	var sess *session.Session
	storeDown := false
	if hasCookie {
		ctx, cancel := storeContext(r)
		s, err := h.store.Lookup(ctx, cookieToken)
		cancel()
		switch {
		case err == nil:
			sess = s
		case errors.Is(err, session.ErrNotFound):
			// Unknown, expired or forged: forget it in the browser too.
			http.SetCookie(w, cs.clear())
		default:
			storeDown = true
			h.storeErrLog.warn("session store unreachable: protected paths answer 503, open paths go upstream without a token", err)
		}
	}

	if sess == nil {
		if protected {
			if storeDown {
				writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be checked right now: try again shortly")
				return nil
			}
			h.refuseAnonymous(w, r)
			return nil
		}
		return next.ServeHTTP(h.wrapUpstreamResponse(w, r, cs, "", nil), r)
	}

	tok, err := h.tokenFor(sess, time.Now())
	if err != nil {
		h.logger.Error("minting a token failed", zap.String("session_id", sess.ID), zap.Error(err))
		if protected {
			writeJSONError(w, http.StatusInternalServerError, "token_unavailable", "a token could not be issued: see the gateway's log")
			return nil
		}
		return next.ServeHTTP(h.wrapUpstreamResponse(w, r, cs, cookieToken, sess), r)
	}
	r.Header.Set(h.InjectHeader, tok.token)
	addCookie(r, h.InjectCookie, tok.token)
	setUserPlaceholders(r, sess)
	return next.ServeHTTP(h.wrapUpstreamResponse(w, r, cs, cookieToken, sess), r)
}

// tokenFor reuses the session's token while it is fresh, else mints one.
func (h *Handler) tokenFor(sess *session.Session, now time.Time) (cachedToken, error) {
	if t, ok := h.tokens.get(sess.ID, h.issuer, now, time.Duration(h.TokenReuse)); ok {
		return t, nil
	}
	t, err := h.mint(sess)
	if err != nil {
		return t, err
	}
	h.tokens.put(sess.ID, t)
	return t, nil
}

// mint always signs a new token for the session.
func (h *Handler) mint(sess *session.Session) (cachedToken, error) {
	signer := h.issuer
	keyID := signer.SigningKey().ID()
	token, iat, exp, err := signer.Mint(issuer.Claims{
		UserID:        sess.UserID,
		SessionID:     sess.ID,
		Email:         sess.Profile.Email,
		EmailVerified: sess.Profile.EmailVerified,
		Name:          sess.Profile.Name,
		Picture:       sess.Profile.Picture,
	})
	if err != nil {
		return cachedToken{}, err
	}
	return cachedToken{token: token, issuedAt: iat, expiresAt: exp, minter: signer, keyID: keyID}, nil
}

func (h *Handler) isProtected(r *http.Request) bool {
	if len(h.protect) == 0 {
		return false
	}
	ok, err := h.protect.MatchWithError(r)
	// A path the matcher cannot read is treated as protected: fail closed.
	return ok || err != nil
}

// refuseAnonymous sends a browser to sign in and brought back; anything else
// gets 401.
func (h *Handler) refuseAnonymous(w http.ResponseWriter, r *http.Request) {
	if isNavigation(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, withRedirectTo(h.SignInURL, r.URL.RequestURI()), http.StatusFound)
		return
	}
	writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "this path needs a signed-in session: sign in at "+h.SignInURL)
}

// isNavigation tells a browser loading a page from a script's request.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func withRedirectTo(target, back string) string {
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	return target + sep + "redirectTo=" + url.QueryEscape(back)
}

// stripClientCopies removes what only the gateway may put in a request: the
// injected header in any case or -/_ spelling, the injected cookie, and the
// upstream sign-in headers.
func (h *Handler) stripClientCopies(r *http.Request) {
	want := normalizeHeaderName(h.InjectHeader)
	for name := range r.Header {
		switch normalizeHeaderName(name) {
		case want, "convex-auth-sign-in", "convex-auth-sign-out":
			delete(r.Header, name)
		}
	}
	removeCookies(r, h.InjectCookie)
}

func normalizeHeaderName(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

func setUserPlaceholders(r *http.Request, sess *session.Session) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	repl.Set("http.auth.user.id", sess.UserID)
	repl.Set("http.auth.user.email", sess.Profile.Email)
	repl.Set("http.auth.user.name", sess.Profile.Name)
	repl.Set("http.auth.user.session_id", sess.ID)
}
