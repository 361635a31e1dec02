package edge

import (
	"context"
	"errors"
	"html"
	"net/http"
	"strconv"
	"time"

	"github.com/convex-auth/caddy-convex-auth/authz"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/stepup"
)

// PathReauthenticate is where a navigation goes when a rule's max_age
// asks for a more recent sign-in (step-up): the stepup pages.
const PathReauthenticate = stepup.PathReauth

// ProtectedOutcome is how a request to a protected path ended, counted
// with the rule's path.
type ProtectedOutcome string

// Outcomes of a protected path.
const (
	ProtectedAdmitted          ProtectedOutcome = "admitted"           // forwarded with its token
	ProtectedSignedOut         ProtectedOutcome = "signed_out"         // sent to sign in, or 401
	ProtectedForbidden         ProtectedOutcome = "forbidden"          // 403: a deny, or no allow
	ProtectedClaimsUnavailable ProtectedOutcome = "claims_unavailable" // 503: the rule needs claims the query could not give
	ProtectedReauthenticate    ProtectedOutcome = "reauthenticate"     // max_age: sent to re-authenticate, or 401 (RFC 9470)
	ProtectedSecondFactor      ProtectedOutcome = "second_factor"      // mfa: 403, the session has no second factor
	ProtectedStoreError        ProtectedOutcome = "store_error"        // 503: the session store did not answer
)

// ProtectedOutcomes lists every ProtectedOutcome.
var ProtectedOutcomes = []ProtectedOutcome{ProtectedAdmitted, ProtectedSignedOut, ProtectedForbidden,
	ProtectedClaimsUnavailable, ProtectedReauthenticate, ProtectedSecondFactor, ProtectedStoreError}

// ProtectedMetrics, when the gateway's Metrics implement it, counts the
// requests of each protected path by outcome.
type ProtectedMetrics interface {
	Protected(path string, outcome ProtectedOutcome)
}

// ClaimsMetrics, when the gateway's Metrics implement it, counts the
// claims query's calls by outcome (authz.QueryOK, …).
type ClaimsMetrics interface {
	ClaimsQuery(outcome string)
}

func (g *Gateway) countProtected(rule *authz.Rule, outcome ProtectedOutcome) {
	if m, ok := g.metrics.(ProtectedMetrics); ok {
		m.Protected(rule.Path(), outcome)
	}
}

// claimsFor returns the session's custom claims: nil without a claims
// block, and nil with ok false when they are unavailable.
func (g *Gateway) claimsFor(ctx context.Context, sess *session.Session) (claims *authz.Claims, ok bool) {
	if g.claims == nil {
		return nil, true
	}
	claims, err := g.claims.For(ctx, sess)
	if err != nil {
		return nil, false
	}
	return claims, true
}

// subjectOf is what a rule is decided on. claims is nil when they are
// unavailable; a gateway without claims has none to offer (NoClaims).
func subjectOf(sess *session.Session, claims *authz.Claims, ok bool) authz.Subject {
	if ok && claims == nil {
		claims = authz.NoClaims
	}
	return authz.Subject{
		UserID:        sess.UserID,
		Provider:      sess.Provider,
		Email:         sess.Profile.Email,
		EmailVerified: sess.Profile.EmailVerified,
		AuthTime:      sess.AuthTime,
		AMR:           sessionAMR(sess),
		Claims:        claims,
	}
}

// authorize applies rule to the signed-in session. It answers a request
// the rule refuses (nothing goes upstream) and returns false.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, rule *authz.Rule, sess *session.Session, claims *authz.Claims, claimsOK bool) bool {
	subject := subjectOf(sess, claims, claimsOK)
	switch rule.Decide(&subject, g.cfg.Issuer.Config().Now()) {
	case authz.Admit:
		return true // counted once the request goes on
	case authz.Forbid:
		g.countProtected(rule, ProtectedForbidden)
		g.refuse(w, r, http.StatusForbidden, "forbidden", "this account may not open this page",
			"You cannot open this page", "You are signed in as "+html.EscapeString(displayName(sess))+", but this page is not open to your account. If you think it should be, ask the site's owner.")
	case authz.ClaimsUnavailable:
		g.countProtected(rule, ProtectedClaimsUnavailable)
		w.Header().Set("Retry-After", "5")
		g.refuse(w, r, http.StatusServiceUnavailable, "claims_unavailable", "who may open this page cannot be checked right now: try again shortly",
			"Try again shortly", "Who may open this page cannot be checked right now. Try again in a few seconds.")
	case authz.NeedSecondFactor:
		g.countProtected(rule, ProtectedSecondFactor)
		g.refuse(w, r, http.StatusForbidden, "second_factor_required", "this page needs a sign-in with a second factor: set one up on the account page, then sign in again",
			"A second factor is needed", "This page needs a sign-in with a second factor (a code from an authenticator app, or a passkey). Set one up on your account page (/auth/account), then sign out and sign in again.")
	case authz.NeedReauthentication:
		g.countProtected(rule, ProtectedReauthenticate)
		g.askReauthentication(w, r, rule.MaxAge())
	}
	return false
}

// askReauthentication sends a navigation to re-authenticate and brought
// back; anything else gets 401 with RFC 9470's challenge, and a JSON error
// code other than the signed-out one.
func (g *Gateway) askReauthentication(w http.ResponseWriter, r *http.Request, maxAge time.Duration) {
	w.Header().Set("Cache-Control", "no-store")
	if isNavigation(r) {
		http.Redirect(w, r, withRedirectTo(PathReauthenticate, r.URL.RequestURI()), http.StatusFound)
		return
	}
	seconds := strconv.FormatInt(int64(maxAge/time.Second), 10)
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="`+seconds+`"`)
	writeJSON(w, http.StatusUnauthorized, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
		MaxAge  int64  `json:"maxAge"`
		Reauth  string `json:"reauthenticate"`
	}{"reauthentication_required", "this needs a sign-in at most " + seconds + " seconds old: re-authenticate at " + PathReauthenticate, int64(maxAge / time.Second), PathReauthenticate})
}

// refuse answers a navigation with a page in words and anything else with
// {"error": code, "message": message}.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, status int, code, message, title, paragraph string) {
	if !isNavigation(r) {
		writeJSONError(w, status, code, message)
		return
	}
	writeHTMLPage(w, status, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>`+html.EscapeString(title)+`</title></head>
<body><main><h1>`+html.EscapeString(title)+`</h1>
<p>`+paragraph+`</p>
<form method="post" action="/auth/signout"><button type="submit">Sign out</button></form>
<p><a href="/">Home</a></p>
</main></body></html>
`)
}

// displayName is how a refusal page names the signed-in user.
func displayName(sess *session.Session) string {
	switch {
	case sess.Profile.Email != "":
		return sess.Profile.Email
	case sess.Profile.Name != "":
		return sess.Profile.Name
	}
	return "user " + sess.UserID
}

// mintForQuery is the token the claims query is called with: the
// session's, without custom claims, so that claims never feed back into
// themselves.
func (g *Gateway) mintForQuery(ctx context.Context, sess *session.Session) (string, error) {
	t, err := g.mint(ctx, sess, nil)
	if errors.Is(err, errGuestGone) {
		return "", session.ErrNotFound
	}
	return t.token, err
}

// RefreshClaims makes every instance drop the user's claims and cached
// tokens: the user's next request asks the claims query again. Only a
// gateway with a claims query can.
func (g *Gateway) RefreshClaims(ctx context.Context, userID string) error {
	if g.claims == nil {
		return errors.New("edge: this gateway has no claims query")
	}
	return g.claims.RefreshUser(ctx, userID)
}
