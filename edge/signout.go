package edge

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/events"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// What a browser is told when its sign-out is kept for the store
// (pending.go). It is signed out either way: its cookie is cleared and this
// gateway refuses the session.
const (
	signOutPendingMessage    = "You are signed out in this browser. The session store could not be reached just now, so the gateway has kept your sign-out and will complete it as soon as the store answers again. Nothing more is needed from you."
	signOutAllPendingMessage = "You are signed out in this browser. The session store could not be reached just now, so your other devices will be signed out as soon as the store answers again. Nothing more is needed from you."
)

// serveSignOut ends the current session, or with all=1 every session of its
// user, and clears the cookie. Same-origin only. A sign-out the store cannot
// take within the request's deadline is kept and applied later (202 with
// what happened, or a page saying it); only when it cannot even be kept
// does it answer 503 and leave the cookie.
func (g *Gateway) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "sign out with POST")
		return
	}
	if !g.sameOrigin(r) {
		writeJSONError(w, http.StatusForbidden, "cross_site", "sign-out must come from this site's own pages")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, httprule.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "bad_form", "the sign-out form could not be read")
		return
	}
	all := r.Form.Get("all") == "1"
	cs := g.cfg.Cookie.forRequest(r)
	pending := false
	if token, ok := readCookie(r, cs.name); ok {
		// One deadline for the lookup and the revocation with its retries.
		ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
		defer cancel()
		var err error
		if pending, err = g.signOut(ctx, token, nil, all); err != nil {
			writeJSONError(w, http.StatusServiceUnavailable, "session_store_unavailable", "sessions cannot be changed right now: try again shortly")
			return
		}
	}
	http.SetCookie(w, cs.clear())
	w.Header().Set("Cache-Control", "no-store")
	if pending {
		g.writeSignOutPending(w, r, all)
		return
	}
	if isNavigation(r) || acceptsHTMLForm(r) {
		http.Redirect(w, r, g.cfg.AfterSignOut, http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// signOut ends the session behind token (sess, when the caller found it
// already; else it is looked up), or every session of its user. The store's
// writes retry through a failover until ctx ends; if the store has not
// taken the revocation by then, it is kept (pending true) and this gateway
// refuses the session until it is applied. An error means it could be
// neither applied nor kept.
func (g *Gateway) signOut(ctx context.Context, token string, sess *session.Session, all bool) (pending bool, err error) {
	ref, ok := session.RefOf(token)
	if !ok {
		return false, nil // no session can exist for it
	}
	if sess == nil {
		sess, err = g.findSession(ctx, token)
	}
	switch {
	case errors.Is(err, session.ErrNotFound):
		if !g.pending.has(ref.SessionID) {
			return false, nil // gone already
		}
		// Kept earlier; a sign-out everywhere may add to it.
		if !all {
			return true, nil
		}
		err = errors.New("the session's user is unknown until the store answers")
	case err != nil:
		// The store could not say whose session it is; a single sign-out
		// needs only the token.
		if !all {
			err = g.endOne(ctx, token, nil)
		}
	case all:
		_, err = g.cfg.Store.DeleteUser(events.WithReason(events.WithSession(ctx, sess), events.ReasonSignOut), sess.UserID, "")
	default:
		err = g.endOne(ctx, token, sess)
	}
	if err == nil {
		g.tokens.drop(ref.SessionID)
		userID := ""
		if sess != nil {
			userID = sess.UserID
		}
		if all && userID != "" {
			g.forgetDevices(ctx, nil, nil, userID)
		}
		g.cfg.Logger.Info("signed out", zap.String("user_id", userID), zap.String("session_id", ref.SessionID), zap.Bool("all", all))
		return false, nil
	}
	kept := PendingRevocation{Ref: ref, All: all, At: time.Now()}
	if sess != nil {
		kept.UserID = sess.UserID
	}
	if kerr := g.pending.keep(ctx, kept); kerr != nil {
		g.storeErrLog.Warn("sign-out could not reach the session store, and could not be kept for it either", errors.Join(err, kerr))
		return false, err
	}
	g.tokens.drop(ref.SessionID)
	g.storeErrLog.Warn("sign-out could not reach the session store in time: the browser is signed out and the revocation is kept in Caddy's storage until the store answers", err)
	g.cfg.Logger.Info("signed out, pending the session store", zap.String("user_id", kept.UserID), zap.String("session_id", ref.SessionID), zap.Bool("all", all))
	return true, nil
}

// endOne deletes the token's session; sess, when known, tells the events
// whose it was.
func (g *Gateway) endOne(ctx context.Context, token string, sess *session.Session) error {
	if sess != nil {
		ctx = events.WithSession(ctx, sess)
	}
	return g.cfg.Store.Delete(events.WithReason(ctx, events.ReasonSignOut), token)
}

// acceptsHTMLForm is a form POST from a page (navigations are GET only).
func acceptsHTMLForm(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" ||
		(r.Header.Get("Sec-Fetch-Mode") == "" && containsFold(r.Header.Get("Accept"), "text/html"))
}

// signOutPendingPage is shown to a browser whose sign-out is kept for the
// store: it is signed out, and is told what is left to happen.
var signOutPendingPage = template.Must(template.New("signout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signed out</title></head>
<body><main><h1>You are signed out</h1>
<p>{{.Message}}</p>
<p><a href="{{.Continue}}">Continue</a></p>
</main></body></html>
`))

// writeSignOutPending answers a sign-out kept for the store: a page for a
// form post from a page, else 202 with JSON saying what happened.
func (g *Gateway) writeSignOutPending(w http.ResponseWriter, r *http.Request, all bool) {
	msg := signOutPendingMessage
	if all {
		msg = signOutAllPendingMessage
	}
	if !(isNavigation(r) || acceptsHTMLForm(r)) {
		writeJSON(w, http.StatusAccepted, struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		}{"signed_out_pending", msg})
		return
	}
	var page strings.Builder
	_ = signOutPendingPage.Execute(&page, struct{ Message, Continue string }{msg, g.cfg.AfterSignOut})
	writeHTMLPage(w, http.StatusOK, page.String())
}
