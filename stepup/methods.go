package stepup

import (
	"context"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// Paths of the built-in methods.
const (
	pathPassword   = PathReauth + "/password"
	providerPrefix = PathReauth + "/provider/"
)

// passwordMethod: the user types their password (counted against the
// account's attempt limit, as a sign-in is).
type passwordMethod struct{}

func (passwordMethod) Options(c Context) []Option {
	if signin.PasswordAccount(c.Accounts) == nil {
		return nil
	}
	// With a second factor the password form asks for its code; a passkey
	// alone cannot be asked here (ReauthPasskeyOnly), and the refusal says so.
	return []Option{{Label: "Confirm with your password", Action: pathPassword, Password: true, Code: c.SecondFactor}}
}

func (passwordMethod) Handle(w http.ResponseWriter, r *http.Request, p *Pages) bool {
	if r.URL.Path != pathPassword {
		return false
	}
	if !p.readForm(w, r) {
		return true
	}
	c, ok := p.Current(w, r, p.redirectTo(r.PostForm.Get("redirectTo")))
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
	defer cancel()
	check, refusal, err := p.signIn.ReauthenticateWithPassword(ctx, r, c.Session, c.Accounts, r.PostForm.Get("password"), r.PostForm.Get("code"))
	status, code := signin.ReauthAnswer(check, refusal)
	if code == "credentials" {
		p.logger.Info("re-authentication refused: wrong password", zap.String("user_id", c.Session.UserID))
	}
	if status != 0 {
		p.render(w, r, status, c, code)
		return true
	}
	p.finish(w, r, c, err)
	return true
}

// readForm is signin.ReadForm, answered with this page.
func (p *Pages) readForm(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		p.fail(w, r, http.StatusMethodNotAllowed, "method", Context{})
		return false
	case !p.cfg.Host.SameOrigin(r):
		p.fail(w, r, http.StatusForbidden, "cross_site", Context{})
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, httprule.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, http.StatusBadRequest, "bad_form", Context{})
		return false
	}
	return true
}

// providerMethod: each provider the user signs in with that can be asked
// for a new sign-in (provider.Info.StepUp: OpenID Connect, Google; not
// GitHub, which neither asks again nor says when the user signed in).
type providerMethod struct{ signIn *signin.Service }

func (m providerMethod) Options(c Context) []Option {
	if c.SecondFactor {
		// The provider's sign-in would skip the second factor: a new
		// sign-in (challenged) does it instead.
		return nil
	}
	var out []Option
	for _, info := range m.signIn.Providers() {
		if info.StepUp && hasAccount(c.Accounts, info.Name) {
			out = append(out, Option{Label: "Continue with " + info.Label, Kind: info.Kind, Action: withRedirect(providerPrefix+info.Name, c.RedirectTo)})
		}
	}
	return out
}

func (providerMethod) Handle(w http.ResponseWriter, r *http.Request, p *Pages) bool {
	name, ok := strings.CutPrefix(r.URL.Path, providerPrefix)
	if !ok {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		p.fail(w, r, http.StatusMethodNotAllowed, "method", Context{})
		return true
	}
	c, ok := p.Current(w, r, p.redirectTo(r.URL.Query().Get("redirectTo")))
	if !ok {
		return true
	}
	if !hasAccount(c.Accounts, name) {
		p.render(w, r, http.StatusNotFound, c, "provider")
		return true
	}
	if c.SecondFactor {
		p.render(w, r, http.StatusForbidden, c, "second_factor")
		return true
	}
	authURL, err := p.signIn.BeginReauth(w, r, name, c.Session, c.RedirectTo)
	if err != nil {
		p.render(w, r, http.StatusServiceUnavailable, c, "unavailable")
		return true
	}
	http.Redirect(w, r, authURL, http.StatusFound)
	return true
}

func hasAccount(accounts []session.Account, provider string) bool {
	for _, a := range accounts {
		if a.Provider == provider {
			return true
		}
	}
	return false
}

// FinishReauth implements signin.Reauthenticator: the provider's sign-in
// counts if it is the session's user (the account is theirs), in the
// browser of the session that began it, and no older than the flow
// (auth_time; a provider that does not say is not trusted to have asked).
func (p *Pages) FinishReauth(w http.ResponseWriter, r *http.Request, re signin.Reauth) bool {
	c, ok := p.Current(w, r, re.RedirectTo)
	if !ok {
		return false
	}
	name := re.Provider.Name
	switch {
	case c.Session.ID != re.SessionID || c.Session.UserID != re.UserID:
		p.logger.Info("re-authentication refused: another session", zap.String("provider", name))
		p.render(w, r, http.StatusForbidden, c, "state")
		return false
	case !ownsAccount(c.Accounts, name, re.Identity.Subject):
		p.logger.Info("re-authentication refused: another account", zap.String("provider", name), zap.String("user_id", c.Session.UserID))
		p.render(w, r, http.StatusForbidden, c, "other_account")
		return false
	case re.Identity.AuthTime.IsZero() || re.Identity.AuthTime.Before(re.Began):
		p.logger.Info("re-authentication refused: the provider did not sign the user in again", zap.String("provider", name),
			zap.Time("auth_time", re.Identity.AuthTime), zap.Time("began", re.Began))
		p.render(w, r, http.StatusForbidden, c, "not_fresh")
		return false
	}
	amr := re.Identity.AMR
	if session.ValidateAMR(amr) != nil {
		amr = nil // the provider's own words, not fit to record
	}
	p.Done(w, r, c, amr)
	return true
}

func ownsAccount(accounts []session.Account, provider, subject string) bool {
	for _, a := range accounts {
		if a.Provider == provider && a.ProviderAccountID == subject {
			return true
		}
	}
	return false
}
