package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/authz"
	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/tracing"
	"github.com/convex-auth/caddy-convex-auth/issuer"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// serveAuthenticated is the request path: cookie → session → claims →
// the protected path's rule → token → injected into the request → next
// handler. Requests a protected path refuses are answered here.
func (g *Gateway) serveAuthenticated(w http.ResponseWriter, r *http.Request, next Next) error {
	cs := g.cfg.Cookie.forRequest(r)
	rule := g.cfg.Rules.Match(r.URL)
	cookieToken, hasCookie := readCookie(r, cs.name)
	g.removeGatewayCookies(r, cs)

	var sess *session.Session
	storeDown := false
	if hasCookie {
		var err error
		sess, err = g.lookupSession(w, r, cs, cookieToken)
		storeDown = err != nil
	}

	var claims *authz.Claims
	var tok cachedToken
	if sess != nil {
		var claimsOK bool
		claims, claimsOK = g.claimsFor(r.Context(), sess)
		if rule != nil && !g.authorize(w, r, rule, sess, claims, claimsOK) {
			return nil
		}
		var err error
		if tok, err = g.tokenFor(r.Context(), sess, claims); errors.Is(err, errGuestGone) {
			http.SetCookie(w, cs.clear())
			sess = nil
		} else if err != nil {
			g.cfg.Logger.Error("minting a token failed", zap.String("session_id", sess.ID), zap.Error(err))
			g.metrics.Request(OutcomeTokenError)
			if rule != nil {
				writeJSONError(w, http.StatusInternalServerError, "token_unavailable", "a token could not be issued: see the gateway's log")
				return nil
			}
			return g.forward(w, r, next, cs, cookieToken, sess)
		}
	}

	if sess == nil {
		if rule != nil {
			if storeDown {
				g.metrics.Request(OutcomeStoreError)
				g.countProtected(rule, ProtectedStoreError)
				writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be checked right now: try again shortly")
				return nil
			}
			g.countProtected(rule, ProtectedSignedOut)
			g.refuseAnonymous(w, r)
			return nil
		}
		if storeDown {
			g.metrics.Request(OutcomeStoreError)
		} else {
			g.metrics.Request(OutcomeAnonymous)
		}
		return g.forward(w, r, next, cs, "", nil)
	}

	r.Header.Set(g.cfg.InjectHeader, tok.token)
	if g.injectCookie.nameFor != nil {
		addCookie(r, g.injectCookie.nameFor(r), tok.token)
	}
	if g.cfg.OnAuthenticated != nil {
		g.cfg.OnAuthenticated(r, Authenticated{Session: sess, Claims: claims})
	}
	if rule != nil {
		g.countProtected(rule, ProtectedAdmitted)
	}
	g.metrics.Request(OutcomeAuthenticated)
	return g.forward(w, r, next, cs, cookieToken, sess)
}

// removeGatewayCookies removes, in one pass, what the upstream must not
// get of the gateway's own cookies: the session cookie (unless
// forward_to_upstream) and every internal one (internal/cookies), in
// every form removeCookiesMatching reads. The gateway's own endpoints, served
// before this, still see them.
func (g *Gateway) removeGatewayCookies(r *http.Request, cs requestCookie) {
	if g.cfg.ForwardSessionCookie {
		removeCookiesMatching(r, internalCookieProbes, cookies.IsInternal)
		return
	}
	removeCookiesMatching(r, []string{cs.name, cookies.Probe}, func(name string) bool {
		return strings.EqualFold(name, cs.name) || cookies.IsInternal(name)
	})
}

var internalCookieProbes = []string{cookies.Probe}

// currentSession looks up the request's session. A nil session with a nil
// error means no or an invalid cookie (which is then cleared); a non-nil
// error means the store could not be asked.
func (g *Gateway) currentSession(w http.ResponseWriter, r *http.Request, cs requestCookie) (token string, sess *session.Session, err error) {
	token, ok := readCookie(r, cs.name)
	if !ok {
		return "", nil, nil
	}
	if sess, err = g.lookupSession(w, r, cs, token); sess == nil {
		return "", nil, err
	}
	return token, sess, nil
}

// lookupSession finds the session behind a cookie token. An unknown, expired
// or forged one is cleared in the browser and gives (nil, nil); a non-nil
// error means the store could not be asked.
func (g *Gateway) lookupSession(w http.ResponseWriter, r *http.Request, cs requestCookie, token string) (*session.Session, error) {
	// No httprule.StoreCallTimeout: the store bounds a lookup that leaves
	// its cache (session.DefaultLookupTimeout), and a cache hit then needs
	// no timer.
	ctx, span := tracing.Start(r.Context(), spanSessionLookup, trace.SpanKindInternal)
	var info *session.LookupInfo
	if span.Recording() {
		info = new(session.LookupInfo)
		ctx = session.WithLookupInfo(ctx, info)
	}
	sess, err := g.findSession(ctx, token)
	if span.Recording() {
		endLookupSpan(span, info, err)
	}
	if errors.Is(err, session.ErrNotFound) {
		http.SetCookie(w, cs.clear())
		return nil, nil
	}
	if err != nil {
		g.storeErrLog.Warn("session store unreachable: protected paths answer 503, open paths go upstream without a token", err)
		return nil, err
	}
	return sess, nil
}

// findSession is the store's Lookup, except that a session signed out while
// the store could not take it (pending.go) is not found. A lookup that ran
// while a kept sign-out was applied and forgotten may hold the session as
// it was before: it is asked again, and the store then has it applied.
func (g *Gateway) findSession(ctx context.Context, token string) (*session.Session, error) {
	for range maxLookupsAcrossApplies {
		removed := g.pending.removed.Load()
		sess, err := g.cfg.Store.Lookup(ctx, token)
		if err != nil {
			return sess, err
		}
		if g.pending.denies(sess) {
			return nil, session.ErrNotFound
		}
		if g.pending.removed.Load() == removed {
			return sess, nil
		}
	}
	return nil, fmt.Errorf("%w: kept sign-outs were being applied throughout the lookups", session.ErrUnavailable)
}

// maxLookupsAcrossApplies bounds findSession's lookups while kept sign-outs
// are applied one after another.
const maxLookupsAcrossApplies = 3

// tokenFor reuses the session's token while the reuse policy allows and
// it carries claims, else mints one. Concurrent misses for one session
// share one mint.
func (g *Gateway) tokenFor(ctx context.Context, sess *session.Session, claims *authz.Claims) (cachedToken, error) {
	t, minted, err := g.tokens.getOrMint(sess.ID, g.cfg.Issuer.SigningKey().ID(), claims, func() (cachedToken, error) {
		return g.mint(ctx, sess, claims)
	})
	if err == nil {
		g.metrics.Token(minted)
	}
	return t, err
}

// mint always signs a new token for the session, with claims (nil: none);
// for a guest's session it moves the guest's expiry first (errGuestGone:
// the guest is gone).
func (g *Gateway) mint(ctx context.Context, sess *session.Session, claims *authz.Claims) (cachedToken, error) {
	if err := g.touchGuest(sess); err != nil {
		return cachedToken{}, err
	}
	signer := g.cfg.Issuer
	key := signer.SigningKey()
	keyID := key.ID()
	_, span := tracing.Start(ctx, spanTokenMint, trace.SpanKindInternal)
	defer span.End()
	if span.Recording() {
		span.SetAttributes(attribute.String(attrTokenKeyID, keyID), attribute.String(attrTokenAlgorithm, string(key.Algorithm())))
	}
	c := issuer.Claims{
		UserID:        sess.UserID,
		SessionID:     sess.ID,
		Email:         sess.Profile.Email,
		EmailVerified: sess.Profile.EmailVerified,
		Name:          sess.Profile.Name,
		Picture:       sess.Profile.Picture,
		AuthTime:      sess.AuthTime,
		AMR:           sessionAMR(sess),
	}
	if claims != nil {
		c.Custom = claims.Members()
	}
	token, iat, exp, err := signer.Mint(c)
	if err != nil {
		span.Fail("the token could not be signed")
		return cachedToken{}, err
	}
	return cachedToken{token: token, issuedAt: iat, expiresAt: exp, keyID: keyID, claims: claims}, nil
}

// sessionAMR is the amr of a session's tokens: the methods it recorded,
// else its sign-in method's.
func sessionAMR(sess *session.Session) []string {
	return signin.FirstFactorAMR(sess.Provider, sess.AMR)
}

// refuseAnonymous sends a browser to sign in and brought back; anything else
// gets 401.
func (g *Gateway) refuseAnonymous(w http.ResponseWriter, r *http.Request) {
	if isNavigation(r) {
		g.metrics.Request(OutcomeRedirected)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, withRedirectTo(g.cfg.SignInURL, r.URL.RequestURI()), http.StatusFound)
		return
	}
	g.metrics.Request(OutcomeRejected)
	writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "this path needs a signed-in session: sign in at "+g.cfg.SignInURL)
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
