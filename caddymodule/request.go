package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

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
		var err error
		sess, err = h.lookupSession(w, r, cs, cookieToken)
		storeDown = err != nil
	}

	if sess == nil {
		if protected {
			if storeDown {
				countRequest(outcomeStoreError)
				writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be checked right now: try again shortly")
				return nil
			}
			h.refuseAnonymous(w, r)
			return nil
		}
		if storeDown {
			countRequest(outcomeStoreError)
		} else {
			countRequest(outcomeAnonymous)
		}
		return next.ServeHTTP(h.wrapUpstreamResponse(w, r, cs, "", nil), r)
	}

	tok, err := h.tokenFor(sess, time.Now())
	if err != nil {
		h.logger.Error("minting a token failed", zap.String("session_id", sess.ID), zap.Error(err))
		countRequest(outcomeTokenError)
		if protected {
			writeJSONError(w, http.StatusInternalServerError, "token_unavailable", "a token could not be issued: see the gateway's log")
			return nil
		}
		return next.ServeHTTP(h.wrapUpstreamResponse(w, r, cs, cookieToken, sess), r)
	}
	r.Header.Set(h.InjectHeader, tok.token)
	addCookie(r, h.injectCookie.nameFor(r), tok.token)
	setUserPlaceholders(r, sess)
	countRequest(outcomeAuthenticated)
	return next.ServeHTTP(h.wrapUpstreamResponse(w, r, cs, cookieToken, sess), r)
}

// tokenFor reuses the session's token while it is fresh, else mints one.
// Concurrent misses for one session share one mint.
func (h *Handler) tokenFor(sess *session.Session, now time.Time) (cachedToken, error) {
	reuse := time.Duration(h.TokenReuse)
	if t, ok := h.tokens.get(sess.ID, h.issuer, now, reuse); ok {
		countTokenReused()
		return t, nil
	}
	ran := false // this call ran the mint rather than sharing another's
	v, err, _ := h.tokens.minting.Do(sess.ID, func() (any, error) {
		ran = true
		// A mint that finished just before this one started has left a
		// fresh token.
		if t, ok := h.tokens.get(sess.ID, h.issuer, time.Now(), reuse); ok {
			countTokenReused()
			return t, nil
		}
		h.tokens.mints.Add(1)
		t, err := h.mint(sess)
		if err != nil {
			return nil, err
		}
		h.tokens.put(sess.ID, t)
		return t, nil
	})
	if err != nil {
		return cachedToken{}, err
	}
	if t := v.(cachedToken); t.minter == h.issuer {
		if !ran {
			countTokenReused()
		}
		return t, nil
	}
	// Handlers with different issuers share the cache (one per store); a
	// token another one minted is not this one's to serve.
	h.tokens.mints.Add(1)
	return h.mint(sess)
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
	countTokenMinted()
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
		countRequest(outcomeRedirected)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, withRedirectTo(h.SignInURL, r.URL.RequestURI()), http.StatusFound)
		return
	}
	countRequest(outcomeRejected)
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
	for name := range r.Header {
		if sameHeaderName(name, h.InjectHeader) || sameHeaderName(name, headerUpstreamSignIn) || sameHeaderName(name, headerUpstreamSignOut) {
			delete(r.Header, name)
		}
	}
	h.injectCookie.strip(r)
}

// sameHeaderName reports whether two header names are the same ignoring
// case and taking _ for -. It runs for every header of every request, so
// ASCII names, the only ones HTTP servers accept, are compared without
// allocating.
func sameHeaderName(a, b string) bool {
	for i := 0; i < len(a); i++ {
		if a[i] >= utf8.RuneSelf {
			return normalizeHeaderName(a) == normalizeHeaderName(b)
		}
	}
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
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
