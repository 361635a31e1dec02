package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// MinSecretBytes is the shortest site admin API secret accepted.
const MinSecretBytes = 32

// DefaultTimeout bounds the store calls of one API request.
const DefaultTimeout = 5 * time.Second

// Operations, as the audit log names them.
const (
	OpFindUser     = "find_user"
	OpGetUser      = "get_user"
	OpListSessions = "list_sessions"
	OpEndSessions  = "end_sessions"
	OpEndSession   = "end_session"
	OpBan          = "ban"
	OpUnban        = "unban"
	OpDeleteUser   = "delete_user"
	OpDeadLetters  = "dead_letters"
	OpImportUsers  = "import_users"
	// OpRefreshClaims makes every instance drop the user's claims and
	// cached tokens and ask the app's claims query again.
	OpRefreshClaims = "refresh_claims"
	OpListFactors   = "list_factors"
	OpResetFactors  = "reset_factors"
)

// Change is what a successful changing call did, for OnChange.
type Change struct {
	// Op is OpEndSessions, OpEndSession, OpBan, OpUnban, OpDeleteUser or
	// OpResetFactors.
	Op     string
	UserID string
	// SessionID is the session OpEndSession ended.
	SessionID string
	// Ended is how many sessions ended.
	Ended int
}

// Config is what a Handler needs. Prefix, Realms and Logger are required.
type Config struct {
	// Prefix is the path the API is mounted at, without a trailing slash:
	// "/convex-auth" on Caddy's admin endpoint, "/auth/admin" on a site.
	Prefix string
	// Realms lists the live realms; the request's ?realm= (or ?issuer=)
	// picks one, and may be left out when there is one.
	Realms func() []Realm
	// Secret, when set, must come as Authorization: Bearer <Secret>
	// (compared in constant time). Default: none, no authentication (Caddy's
	// admin endpoint, which guards itself).
	Secret string
	// Logger audits every call: operation, user ID, realm and status,
	// never the secret.
	Logger *zap.Logger
	// OnChange is told of every change made. Default: nothing is told.
	OnChange func(ctx context.Context, realm Realm, c Change)
	// Timeout bounds one request's store calls (an import's, each user's).
	// Default: DefaultTimeout.
	Timeout time.Duration
	// Import serves POST /users/import, which creates users under any ID
	// with any password hash: on for Caddy's admin endpoint only. Default:
	// off.
	Import bool
}

// CheckSecret reports a site admin API secret that is too weak to use.
func CheckSecret(secret string) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("admin_api secret is %d bytes, it must be at least %d: generate one with `openssl rand -base64 48`", len(secret), MinSecretBytes)
	}
	return nil
}

// Handler serves the operations under its prefix:
//
//	GET    /users?email=<e>
//	GET    /users/{id}
//	DELETE /users/{id}
//	GET    /users/{id}/sessions
//	DELETE /users/{id}/sessions[?except=<sessionId>]
//	DELETE /users/{id}/sessions/{sid}
//	POST   /users/{id}/ban
//	DELETE /users/{id}/ban
//	GET    /users/{id}/factors
//	DELETE /users/{id}/factors
//	GET    /events/dead[?limit=n]
//	POST   /users/import?from=<source>[&dry_run=true&events=true&map=a=b&sub_from=f&users_table=t] (Import only; body: the export as a ZIP)
//
// Answers are JSON; errors are {"error": code, "message": sentence}.
type Handler struct {
	cfg        Config
	secretHash [sha256.Size]byte
}

// NewHandler checks cfg and builds the handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Prefix == "" || !strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("control: prefix %q must start with / and not end with one", cfg.Prefix)
	}
	if cfg.Realms == nil || cfg.Logger == nil {
		return nil, errors.New("control: realms and logger are required")
	}
	if cfg.Secret != "" {
		if err := CheckSecret(cfg.Secret); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	h := &Handler{cfg: cfg}
	if cfg.Secret != "" {
		h.secretHash = sha256.Sum256([]byte(cfg.Secret))
	}
	return h, nil
}

// apiError is an answer other than success.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}

// call is one parsed request.
type call struct {
	op        string
	userID    string
	sessionID string
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	c, status, err := h.serve(w, r)
	fields := []zap.Field{zap.String("op", c.op), zap.Int("status", status)}
	if c.userID != "" {
		fields = append(fields, zap.String("user_id", c.userID))
	}
	if c.sessionID != "" {
		fields = append(fields, zap.String("session_id", c.sessionID))
	}
	if h.cfg.Secret != "" {
		fields = append(fields, zap.String("remote_addr", r.RemoteAddr))
	}
	var ae *apiError
	switch {
	case err == nil:
		h.cfg.Logger.Info("admin api call", fields...)
	case errors.As(err, &ae):
		writeError(w, ae)
		h.cfg.Logger.Info("admin api call refused", append(fields, zap.String("error", ae.code))...)
	}
}

// serve answers r and returns the call and the status it answered with.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (call, int, error) {
	// Parsed first so that a refused call is audited by what it asked.
	c, aerr := h.route(r)
	if err := h.guard(r); err != nil {
		return c, err.status, err
	}
	if aerr != nil {
		return c, aerr.status, aerr
	}
	realm, aerr := h.realm(r)
	if aerr != nil {
		return c, aerr.status, aerr
	}
	if c.op == OpDeadLetters {
		if realm.DeadLetters == nil {
			return c, http.StatusNotFound, errorf(http.StatusNotFound, "no_events", "realm %q sends no events: configure events { url … secret … } (docs/events.md)", realm.Name)
		}
		realm.DeadLetters.ServeHTTP(w, r)
		return c, http.StatusOK, nil
	}
	if c.op == OpImportUsers {
		return h.serveImport(w, r, realm, c)
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	body, err := h.do(ctx, r, realm, &c)
	if err != nil {
		ae := h.storeError(err, c.op)
		return c, ae.status, ae
	}
	writeJSON(w, http.StatusOK, body)
	return c, http.StatusOK, nil
}

// guard refuses browsers' cross-site requests and preflights (the API sets
// no CORS headers, so no other site may call it) and, with a secret, a
// request without it. Cookies play no part.
func (h *Handler) guard(r *http.Request) *apiError {
	if r.Method == http.MethodOptions {
		return errorf(http.StatusForbidden, "cors_refused", "cross-origin requests are refused: call the admin API from a server")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errorf(http.StatusForbidden, "cross_site", "cross-site requests are refused: call the admin API from a server")
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
		return errorf(http.StatusForbidden, "cross_site", "requests from another origin are refused: call the admin API from a server")
	}
	if h.cfg.Secret == "" {
		return nil
	}
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return errorf(http.StatusUnauthorized, "unauthorized", "send the admin API secret as Authorization: Bearer <secret>")
	}
	// Hashing first makes the comparison's time independent of the length.
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(got[:], h.secretHash[:]) != 1 {
		return errorf(http.StatusUnauthorized, "unauthorized", "the admin API secret is wrong")
	}
	return nil
}

func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// route parses the path after the prefix and checks the method.
func (h *Handler) route(r *http.Request) (call, *apiError) {
	var c call
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), h.cfg.Prefix+"/")
	if !ok {
		c.op = "unknown"
		return c, errorf(http.StatusNotFound, "not_found", "no such admin API route: see docs/admin-api.md")
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil || (v == "" && i > 0) {
			c.op = "unknown"
			return c, errorf(http.StatusNotFound, "not_found", "no such admin API route: see docs/admin-api.md")
		}
		parts[i] = v
	}
	allow := func(methods ...string) *apiError {
		if slices.Contains(methods, r.Method) {
			return nil
		}
		return &apiError{http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed here: use %s", r.Method, strings.Join(methods, " or "))}
	}
	if len(parts) == 2 && parts[0] == "events" && parts[1] == "dead" {
		c.op = OpDeadLetters
		return c, allow(http.MethodGet)
	}
	if parts[0] != "users" {
		c.op = "unknown"
		return c, errorf(http.StatusNotFound, "not_found", "no such admin API route: see docs/admin-api.md")
	}
	var err *apiError
	switch len(parts) {
	case 1:
		c.op, err = OpFindUser, allow(http.MethodGet)
	case 2:
		if parts[1] == "import" && r.Method == http.MethodPost && h.cfg.Import {
			c.op = OpImportUsers
			return c, nil
		}
		c.userID = parts[1]
		c.op = OpGetUser
		if r.Method == http.MethodDelete {
			c.op = OpDeleteUser
		}
		err = allow(http.MethodGet, http.MethodDelete)
	case 3:
		c.userID = parts[1]
		switch parts[2] {
		case "sessions":
			c.op = OpListSessions
			if r.Method == http.MethodDelete {
				c.op = OpEndSessions
			}
			err = allow(http.MethodGet, http.MethodDelete)
		case "ban":
			c.op = OpBan
			if r.Method == http.MethodDelete {
				c.op = OpUnban
			}
			err = allow(http.MethodPost, http.MethodDelete)
		case "factors":
			c.op = OpListFactors
			if r.Method == http.MethodDelete {
				c.op = OpResetFactors
			}
			err = allow(http.MethodGet, http.MethodDelete)
		default:
			c.op, err = "unknown", errorf(http.StatusNotFound, "not_found", "no such admin API route: see docs/admin-api.md")
		}
	case 4:
		switch {
		case parts[2] == "sessions":
			c.userID, c.sessionID, c.op = parts[1], parts[3], OpEndSession
			err = allow(http.MethodDelete)
		case parts[2] == "claims" && parts[3] == "refresh":
			c.userID, c.op = parts[1], OpRefreshClaims
			err = allow(http.MethodPost)
		default:
			c.op = "unknown"
			return c, errorf(http.StatusNotFound, "not_found", "no such admin API route: see docs/admin-api.md")
		}
	default:
		c.op, err = "unknown", errorf(http.StatusNotFound, "not_found", "no such admin API route: see docs/admin-api.md")
	}
	if err == nil && c.userID != "" && len(c.userID) > session.MaxUserIDBytes {
		err = errorf(http.StatusNotFound, "user_not_found", "no such user")
	}
	return c, err
}

// realm picks the realm the request names, or the only one.
func (h *Handler) realm(r *http.Request) (Realm, *apiError) {
	realms := h.cfg.Realms()
	q := r.URL.Query()
	want := q.Get("realm")
	if want == "" {
		want = q.Get("issuer")
	}
	if want == "" {
		switch len(realms) {
		case 0:
			return Realm{}, errorf(http.StatusServiceUnavailable, "no_realm", "no convex_auth handler is running in this Caddy")
		case 1:
			return realms[0], nil
		}
		return Realm{}, errorf(http.StatusBadRequest, "realm_required", "this Caddy serves %d realms: name one with ?realm=<name or issuer> (%s)", len(realms), realmNames(realms))
	}
	var found []Realm
	for _, rl := range realms {
		if rl.Name == want || session.RealmTag(rl.Name) == want || slices.Contains(rl.Issuers, want) {
			found = append(found, rl)
		}
	}
	switch len(found) {
	case 0:
		return Realm{}, errorf(http.StatusNotFound, "unknown_realm", "no realm %q is running in this Caddy: use one of %s", want, realmNames(realms))
	case 1:
		return found[0], nil
	}
	return Realm{}, errorf(http.StatusBadRequest, "realm_ambiguous", "%q names %d realms: name the realm itself (%s)", want, len(found), realmNames(found))
}

func realmNames(realms []Realm) string {
	names := make([]string, len(realms))
	for i, rl := range realms {
		names[i] = fmt.Sprintf("%q", rl.Name)
	}
	return strings.Join(names, ", ")
}

// do runs the call and returns the answer's JSON body.
func (h *Handler) do(ctx context.Context, r *http.Request, realm Realm, c *call) (any, error) {
	changed := func(ch Change) {
		if h.cfg.OnChange != nil {
			h.cfg.OnChange(context.WithoutCancel(ctx), realm, ch)
		}
	}
	switch c.op {
	case OpFindUser:
		email := r.URL.Query().Get("email")
		if strings.TrimSpace(email) == "" {
			return nil, errorf(http.StatusBadRequest, "email_required", "find a user with ?email=<address>")
		}
		d, err := FindByEmail(ctx, realm, email)
		if err == nil {
			c.userID = d.User.ID
		}
		return d, err
	case OpGetUser:
		return GetUser(ctx, realm, c.userID)
	case OpDeleteUser:
		if err := DeleteUser(ctx, realm, c.userID); err != nil {
			return nil, err
		}
		changed(Change{Op: OpDeleteUser, UserID: c.userID})
		return struct {
			Deleted bool `json:"deleted"`
		}{true}, nil
	case OpListSessions:
		list, err := ListSessions(ctx, realm, c.userID)
		if err != nil {
			return nil, err
		}
		views := make([]session.View, 0, len(list))
		for _, s := range list {
			views = append(views, session.NewView(s, false))
		}
		return struct {
			Sessions []session.View `json:"sessions"`
		}{views}, nil
	case OpEndSessions:
		n, err := EndSessions(ctx, realm, c.userID, r.URL.Query().Get("except"))
		if err != nil {
			return nil, err
		}
		changed(Change{Op: OpEndSessions, UserID: c.userID, Ended: n})
		return ended{n}, nil
	case OpEndSession:
		if err := EndSession(ctx, realm, c.userID, c.sessionID); err != nil {
			return nil, err
		}
		changed(Change{Op: OpEndSession, UserID: c.userID, SessionID: c.sessionID, Ended: 1})
		return ended{1}, nil
	case OpBan:
		u, n, err := Ban(ctx, realm, c.userID)
		if err != nil {
			return nil, err
		}
		changed(Change{Op: OpBan, UserID: c.userID, Ended: n})
		return struct {
			User  UserInfo `json:"user"`
			Ended int      `json:"ended"`
		}{userInfo(u), n}, nil
	case OpRefreshClaims:
		if realm.RefreshClaims == nil {
			return nil, errorf(http.StatusNotFound, "no_claims", "realm %q has no claims query: configure claims { convex_url … query … } (docs/authorization.md)", realm.Name)
		}
		if err := realm.RefreshClaims(ctx, c.userID); err != nil {
			return nil, err
		}
		return struct {
			Refreshed bool `json:"refreshed"`
		}{true}, nil
	case OpListFactors:
		return ListFactors(ctx, realm, c.userID)
	case OpResetFactors:
		if err := ResetFactors(ctx, realm, c.userID); err != nil {
			return nil, err
		}
		changed(Change{Op: OpResetFactors, UserID: c.userID})
		return struct {
			Reset bool `json:"reset"`
		}{true}, nil
	case OpUnban:
		u, err := Unban(ctx, realm, c.userID)
		if err != nil {
			return nil, err
		}
		changed(Change{Op: OpUnban, UserID: c.userID})
		return struct {
			User UserInfo `json:"user"`
		}{userInfo(u)}, nil
	}
	return nil, errorf(http.StatusNotFound, "not_found", "no such admin API route: see docs/admin-api.md")
}

type ended struct {
	Ended int `json:"ended"`
}

// storeError maps an operation's error to an answer.
func (h *Handler) storeError(err error, op string) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrUserNotFound):
		return errorf(http.StatusNotFound, "user_not_found", "no such user in this realm")
	case errors.Is(err, ErrSessionNotFound):
		return errorf(http.StatusNotFound, "session_not_found", "the user has no live session with that ID")
	case errors.Is(err, session.ErrInvalidUser), errors.Is(err, session.ErrInvalidSession):
		return errorf(http.StatusBadRequest, "invalid", "%s", err.Error())
	case session.IsUnavailable(err):
		h.cfg.Logger.Warn("admin api: the store failed", zap.String("op", op), zap.Error(err))
		return errorf(http.StatusServiceUnavailable, "store_unavailable", "the session store cannot be reached: try again shortly")
	}
	h.cfg.Logger.Error("admin api: the operation failed", zap.String("op", op), zap.Error(err))
	return errorf(http.StatusInternalServerError, "internal", "the operation failed: see the gateway's log")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="convex_auth admin"`)
	}
	writeJSON(w, e.status, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{e.code, e.message})
}
