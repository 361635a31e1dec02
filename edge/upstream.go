package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// maxUpstreamSubjectLen bounds the user ID an upstream may assert.
const maxUpstreamSubjectLen = 256

// upstreamSignIn is the JSON of a Convex-Auth-Sign-In response header.
type upstreamSignIn struct {
	Sub           string `json:"sub"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
}

func parseUpstreamSignIn(v string) (upstreamSignIn, error) {
	var in upstreamSignIn
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, errors.New("it is not a JSON object with sub and optional email, email_verified, name, picture")
	}
	if dec.More() {
		return in, errors.New("it holds more than one JSON value")
	}
	if strings.TrimSpace(in.Sub) == "" || len(in.Sub) > maxUpstreamSubjectLen || strings.ContainsAny(in.Sub, ";\x00") {
		return in, errors.New("its sub must be a non-empty user ID of at most 256 characters without ';'")
	}
	return in, nil
}

// upstreamResponse watches the response for the sign-in and sign-out
// headers, acts on them when trusted, and never lets them reach the client.
type upstreamResponse struct {
	http.ResponseWriter
	g           *Gateway
	r           *http.Request
	cs          requestCookie
	cookieToken string
	sess        *session.Session
	honour      bool // the request may sign in or out (forward)
	wroteHeader bool
	replaced    bool // the upstream's response was replaced by an error
}

// forward passes r on to next, watching the response for the upstream
// sign-in headers. They are honoured only when the gateway trusts the
// upstream and r is a same-origin, state-changing request to an allowed path,
// so that a link or a cross-site form cannot sign a browser in; they never
// reach the client, in the final response, a 1xx or a trailer.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, next Next, cs requestCookie, cookieToken string, sess *session.Session) error {
	u := &upstreamResponse{ResponseWriter: w, g: g, r: r, cs: cs, cookieToken: cookieToken, sess: sess,
		honour: g.cfg.TrustUpstreamSignIn && g.mayAssertSignIn(r)}
	err := next.ServeHTTP(u, r)
	// Trailers are written after the handler returns, from the header map.
	hdr := w.Header()
	for _, name := range []string{HeaderUpstreamSignIn, HeaderUpstreamSignOut} {
		hdr.Del(name)
		delete(hdr, http.TrailerPrefix+name)
		delete(hdr, http.TrailerPrefix+http.CanonicalHeaderKey(name))
	}
	return err
}

// mayAssertSignIn tells whether a response to r may sign the browser in or
// out: a same-origin request with a state-changing method, to a path that
// upstream_sign_in_paths allows.
func (g *Gateway) mayAssertSignIn(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodConnect:
		return false
	}
	if !g.sameOrigin(r) {
		return false
	}
	if g.cfg.UpstreamSignInPaths != nil {
		ok, err := g.cfg.UpstreamSignInPaths(r)
		return ok && err == nil
	}
	return true
}

// withoutSignInHeaders drops the upstream sign-in headers from a header
// map, and from its Trailer announcement.
func withoutSignInHeaders(hdr http.Header) {
	hdr.Del(HeaderUpstreamSignIn)
	hdr.Del(HeaderUpstreamSignOut)
	announced := hdr.Values("Trailer")
	if len(announced) == 0 {
		return
	}
	var kept []string
	for _, line := range announced {
		for _, name := range strings.Split(line, ",") {
			name = strings.TrimSpace(name)
			if name != "" && !sameHeaderName(name, HeaderUpstreamSignIn) && !sameHeaderName(name, HeaderUpstreamSignOut) {
				kept = append(kept, name)
			}
		}
	}
	hdr.Del("Trailer")
	if len(kept) > 0 {
		hdr.Set("Trailer", strings.Join(kept, ", "))
	}
}

// Unwrap lets http.ResponseController reach the connection (Hijack,
// deadlines).
func (u *upstreamResponse) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func (u *upstreamResponse) WriteHeader(status int) {
	if u.wroteHeader {
		return
	}
	hdr := u.ResponseWriter.Header()
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints) never signs in.
		withoutSignInHeaders(hdr)
		u.ResponseWriter.WriteHeader(status)
		return
	}
	u.wroteHeader = true
	signIn, signOut := hdr.Get(HeaderUpstreamSignIn), hdr.Get(HeaderUpstreamSignOut)
	withoutSignInHeaders(hdr)
	if (signIn != "" || signOut != "") && !u.honour {
		if u.g.cfg.TrustUpstreamSignIn {
			u.g.cfg.Logger.Warn("ignored the upstream's sign-in or sign-out header: it is honoured only on same-origin POST (or other state-changing) requests to the allowed paths",
				zap.String("method", u.r.Method), zap.String("path", u.r.URL.Path))
		}
	}
	if u.honour && (signIn != "" || signOut != "") {
		if err := u.apply(signIn, signOut); err != nil {
			u.replaced = true
			for k := range hdr {
				delete(hdr, k)
			}
			if err.code == "banned" && acceptsHTMLForm(u.r) {
				writeBannedPage(u.ResponseWriter)
				return
			}
			writeJSONError(u.ResponseWriter, err.status, err.code, err.message)
			return
		}
	}
	u.ResponseWriter.WriteHeader(status)
}

type upstreamError struct {
	status        int
	code, message string
}

// apply signs the user in or out as the upstream asked. A sign-in always
// replaces the current session, so a session ID never survives a sign-in.
func (u *upstreamResponse) apply(signIn, signOut string) *upstreamError {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.r.Context()), httprule.StoreCallTimeout)
	defer cancel()
	if signOut != "" || signIn != "" {
		if u.sess != nil {
			// A sign-out the store cannot take in time is kept for it
			// (pending.go): the browser is signed out either way.
			if _, err := u.g.signOut(ctx, u.cookieToken, u.sess, false); err != nil {
				return &upstreamError{http.StatusServiceUnavailable, "session_store_unavailable", "the sign-out could not be saved: try again shortly"}
			}
		}
		http.SetCookie(u.ResponseWriter, u.cs.clear())
	}
	if signIn == "" {
		return nil
	}
	in, err := parseUpstreamSignIn(signIn)
	if err != nil {
		u.g.metrics.SignIn(UpstreamProvider, false)
		u.g.cfg.Logger.Error("upstream sent a malformed "+HeaderUpstreamSignIn+" header", zap.String("reason", err.Error()))
		return &upstreamError{http.StatusBadGateway, "bad_upstream_sign_in", "the app's sign-in could not be completed: the gateway got a malformed " + HeaderUpstreamSignIn + " header"}
	}
	token, sess, err := u.g.cfg.Store.Create(ctx, session.NewSession{
		UserID:   in.Sub,
		Provider: UpstreamProvider,
		Profile:  session.Profile{Email: in.Email, EmailVerified: in.EmailVerified, Name: in.Name, Picture: in.Picture},
		// The browser's, for the account page's session list.
		UserAgent: u.r.Header.Get("User-Agent"),
	})
	if err != nil {
		u.g.metrics.SignIn(UpstreamProvider, false)
		u.g.storeErrLog.Warn("upstream sign-in could not reach the session store", err)
		return &upstreamError{http.StatusServiceUnavailable, "session_store_unavailable", "the sign-in could not be saved: try again shortly"}
	}
	if err := u.g.refuseBanned(ctx, sess.UserID, token); err != nil {
		u.g.metrics.SignIn(UpstreamProvider, false)
		if errors.Is(err, signin.ErrBanned) {
			u.g.cfg.Logger.Info("upstream sign-in refused: the user is banned", zap.String("user_id", sess.UserID))
			return &upstreamError{http.StatusForbidden, "banned", "this account is banned from signing in to this site"}
		}
		u.g.storeErrLog.Warn("upstream sign-in could not check the user's ban", err)
		return &upstreamError{http.StatusServiceUnavailable, "session_store_unavailable", "the sign-in could not be saved: try again shortly"}
	}
	// Replace the clearing cookie set above with the new session's.
	hdr := u.ResponseWriter.Header()
	cookies := hdr.Values("Set-Cookie")
	hdr.Del("Set-Cookie")
	prefix := u.cs.name + "="
	for _, c := range cookies {
		if !strings.HasPrefix(c, prefix) {
			hdr.Add("Set-Cookie", c)
		}
	}
	http.SetCookie(u.ResponseWriter, u.cs.set(token, sess.ExpiresAt))
	u.g.metrics.SignIn(UpstreamProvider, true)
	u.g.cfg.Logger.Info("signed in by upstream", zap.String("user_id", sess.UserID), zap.String("session_id", sess.ID))
	return nil
}

func (u *upstreamResponse) Write(p []byte) (int, error) {
	if !u.wroteHeader {
		u.WriteHeader(http.StatusOK)
	}
	if u.replaced {
		return len(p), nil
	}
	return u.ResponseWriter.Write(p)
}

// ReadFrom must not bypass WriteHeader, as the embedded wrapper's would.
func (u *upstreamResponse) ReadFrom(r io.Reader) (int64, error) {
	if !u.wroteHeader {
		u.WriteHeader(http.StatusOK)
	}
	if u.replaced {
		return io.Copy(io.Discard, r)
	}
	if rf, ok := u.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(u.ResponseWriter, r)
}

// FlushError keeps flushes from sending the headers before WriteHeader saw them.
func (u *upstreamResponse) FlushError() error {
	if !u.wroteHeader {
		u.WriteHeader(http.StatusOK)
	}
	if u.replaced {
		return nil
	}
	return http.NewResponseController(u.ResponseWriter).Flush()
}

// Interface guards; http.ResponseController finds FlushError, and Hijack
// through Unwrap.
var (
	_ io.ReaderFrom                             = (*upstreamResponse)(nil)
	_ interface{ FlushError() error }           = (*upstreamResponse)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*upstreamResponse)(nil)
)
