// Package stepup owns /auth/reauth, step-up: the signed-in browser proves
// it is still its user, and its session is re-authenticated in place
// (same session ID; its auth_time moves to now), so that paths whose
// protect rule has max_age admit it again. The page offers what the user
// has: the password, and each OpenID Connect provider the user signs in
// with, asked for a new sign-in (prompt=login, max_age=0) whose auth_time
// must not be older than the re-authentication; a user with a second
// factor gives its code with the password. It is built on a
// signin.Service, whose page shell, flows and password checks it uses.
package stepup

import (
	"context"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// PathReauth is the page; each method's paths are under it.
const PathReauth = signin.PathReauth

// pathSignOut is the gateway's sign-out, the way out when no method applies.
const pathSignOut = "/auth/signout"

// Config is what the pages need.
type Config struct {
	// SignIn re-authenticates sessions (signin.Service.Reauthenticate:
	// the store's Reauthenticate, which the account page uses too).
	SignIn *signin.Service
}

// method is one way to re-authenticate, offered on the page.
type method interface {
	// Options are what the page shows the user in c: none when the
	// method does not apply to them.
	Options(c Context) []Option
	// Handle serves the method's own paths (under PathReauth+"/") and
	// reports whether r was one of them. A method that checked who the
	// user is calls Pages.Done.
	Handle(w http.ResponseWriter, r *http.Request, p *Pages) bool
}

// Context is who is re-authenticating and where they go next.
type Context struct {
	Session    *session.Session
	User       *session.User
	Accounts   []session.Account
	RedirectTo string
	// SecondFactor: the user has a second factor, which a re-authentication
	// needs too: the password with a code, or a new sign-in (challenged).
	SecondFactor bool
}

// Option is one form on the page: a button that GETs Action, or (with
// Password) a form that POSTs a password to it.
type Option struct {
	// Label is what the button says, e.g. "Continue with Google".
	Label string
	// Kind picks an icon: a provider kind ("google", "oidc").
	Kind string
	// Action is the URL the button goes to, with redirectTo.
	Action string
	// Password: a POST form with a password field (named password) and a
	// hidden redirectTo; Code adds the second factor's code field (code).
	Password, Code bool
}

// Pages serve /auth/reauth and its methods for one sign-in service.
type Pages struct {
	signIn  *signin.Service
	cfg     signin.Config
	methods []method
	logger  *zap.Logger
}

// New builds the pages on cfg.SignIn and has it hand them the provider
// flows they start.
func New(cfg Config) (*Pages, error) {
	if cfg.SignIn == nil {
		return nil, errors.New("stepup: a sign-in service is required")
	}
	sc := cfg.SignIn.Config()
	p := &Pages{signIn: cfg.SignIn, cfg: sc, logger: sc.Logger.Named("stepup")}
	p.methods = []method{passwordMethod{}, providerMethod{cfg.SignIn}}
	cfg.SignIn.HandleReauth(p)
	return p, nil
}

// Handle serves /auth/reauth and the methods' paths, and reports whether
// r was one of them.
func (p *Pages) Handle(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == PathReauth:
		p.servePage(w, r)
		return true
	case strings.HasPrefix(r.URL.Path, PathReauth+"/"):
		for _, m := range p.methods {
			if m.Handle(w, r, p) {
				return true
			}
		}
	}
	return false
}

// Current is the request's session and its user. Without a session the
// browser is sent to sign in (and back to the page), and nil is returned.
func (p *Pages) Current(w http.ResponseWriter, r *http.Request, redirectTo string) (Context, bool) {
	sess, err := p.cfg.Host.Session(r)
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable", Context{RedirectTo: redirectTo})
		return Context{}, false
	}
	if sess == nil {
		signin.Redirect(w, r, signin.SignInURL(withRedirect(PathReauth, redirectTo), nil))
		return Context{}, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
	defer cancel()
	c := Context{Session: sess, RedirectTo: redirectTo}
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	switch {
	case errors.Is(err, session.ErrNotFound):
		// Signed in by the app upstream: the gateway keeps no methods.
		c.User = &session.User{ID: sess.UserID, Profile: sess.Profile}
	case err != nil:
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable", c)
		return Context{}, false
	default:
		c.User = user
		if c.Accounts, err = p.cfg.Users.AccountsOf(ctx, sess.UserID); err != nil {
			p.fail(w, r, http.StatusServiceUnavailable, "unavailable", c)
			return Context{}, false
		}
		if c.SecondFactor, err = p.signIn.HasSecondFactor(ctx, sess.UserID); err != nil {
			p.fail(w, r, http.StatusServiceUnavailable, "unavailable", c)
			return Context{}, false
		}
	}
	return c, true
}

// Done re-authenticates c's session now, by amr, and sends the browser on.
func (p *Pages) Done(w http.ResponseWriter, r *http.Request, c Context, amr []string) {
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
	defer cancel()
	p.finish(w, r, c, p.signIn.Reauthenticate(ctx, c.Session, amr))
}

// finish sends the browser on once c's session is re-authenticated, or
// says why it was not (err, the store's).
func (p *Pages) finish(w http.ResponseWriter, r *http.Request, c Context, err error) {
	if errors.Is(err, session.ErrNotFound) {
		signin.Redirect(w, r, signin.SignInURL(c.RedirectTo, nil))
		return
	}
	if err != nil {
		p.logger.Warn("re-authentication could not reach the store", zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable", c)
		return
	}
	p.logger.Info("re-authenticated", zap.String("user_id", c.Session.UserID), zap.String("session_id", c.Session.ID))
	signin.Redirect(w, r, p.cfg.Redirects.Resolve(c.RedirectTo))
}

func (p *Pages) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		p.fail(w, r, http.StatusMethodNotAllowed, "method", Context{})
		return
	}
	q := r.URL.Query()
	c, ok := p.Current(w, r, p.redirectTo(q.Get("redirectTo")))
	if !ok {
		return
	}
	p.render(w, r, http.StatusOK, c, q.Get("error"))
}

// redirectTo keeps a destination the redirect policy allows.
func (p *Pages) redirectTo(v string) string {
	if v == "" || !p.cfg.Redirects.Allowed(v) {
		return ""
	}
	return v
}

//go:embed templates/reauth.html
var pageText string

var pageTemplate = template.Must(signin.NewPageTemplate("reauth").Parse(pageText))

// PageData is what the page template gets.
type PageData struct {
	Site       string
	User       string // how the page names the user
	RedirectTo string
	Options    []Option
	Error      string
	// SignInURL signs in again (a new session, shown to the signed-in
	// browser: reauth=1) and comes back, for methods the page cannot
	// offer (an email link, GitHub); SignOutURL signs out.
	SignOutURL string
	SignInURL  string
}

var messages = map[string]string{
	"credentials":            "That password is not right.",
	signin.ReauthCodeRefused: "The password is right, but the code is not: enter the code your authenticator app shows now, or a backup code.",
	signin.ReauthCodesSpent:  "Too many wrong codes were tried in this session. Sign out and sign in again, or wait 10 minutes.",
	signin.ReauthPasskeyOnly: "Your account has a passkey as its second step: sign in again with it to confirm it's you.",
	"second_factor":          "Your account has a second step, which this way of confirming cannot ask for: confirm with your password and a code, or sign in again.",
	"too_many_attempts":      "Too many wrong passwords. Wait a while and try again.",
	"not_fresh":              "The provider did not ask you to sign in again, so it does not count. Try again, or use another way.",
	"other_account":          "That is another account than the one signed in here. Nothing changed.",
	"provider":               "The provider could not confirm it was you. Try again.",
	"denied":                 "You cancelled at the provider. Nothing changed.",
	"state":                  "This confirmation expired or began in another browser. Start again.",
	"unavailable":            "This cannot be done right now. Try again shortly.",
	"method":                 "That is not how this page is used.",
	"cross_site":             "This form must be sent from this site's own pages.",
	"bad_form":               "The form could not be read.",
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, c Context, code string) {
	d := PageData{Site: p.signIn.Site(), RedirectTo: c.RedirectTo, Error: messages[code],
		SignOutURL: pathSignOut, SignInURL: signin.SignInURL(c.RedirectTo, url.Values{"reauth": {"1"}})}
	if c.Session != nil {
		d.User = c.Session.Profile.Email
		if d.User == "" {
			d.User = c.Session.Profile.Name
		}
		for _, m := range p.methods {
			d.Options = append(d.Options, m.Options(c)...)
		}
	}
	p.signIn.WritePage(w, r, status, pageTemplate, d, "re-authentication")
}

func (p *Pages) fail(w http.ResponseWriter, r *http.Request, status int, code string, c Context) {
	c.Session = nil
	p.render(w, r, status, c, code)
}

// withRedirect adds redirectTo to path's query.
func withRedirect(path, redirectTo string) string {
	if redirectTo == "" {
		return path
	}
	return path + "?" + url.Values{"redirectTo": {redirectTo}}.Encode()
}
