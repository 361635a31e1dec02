package account

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

//go:embed templates/account.html
var pageTemplateText string

// pageTemplate has the sign-in page's look and functions.
var pageTemplate = template.Must(signin.NewPageTemplate("account").Parse(pageTemplateText))

// upstreamProvider names the sessions the app signs in itself
// (edge.UpstreamProvider).
const upstreamProvider = "upstream"

// PageData is what the account page template gets.
type PageData struct {
	Site string
	// Mode is "account", "delete" (the confirmation before deleting), or
	// "deleted" once the account is gone.
	Mode string
	// Error and Notice are sentences for the user, or empty; their codes
	// name them.
	Error, ErrorCode   string
	Notice, NoticeCode string

	Email         string
	EmailVerified bool
	Name          string
	Picture       string
	Guest         bool
	// AppManaged: the app signed this user in (no user record here), so
	// only the sessions can be managed on this page.
	AppManaged bool
	// Methods are the linked sign-in methods; Linkable the OAuth providers
	// not linked yet (each a POST form to its URL).
	Methods  []Method
	Linkable []signin.PageProvider
	// VerifyFirst: the user must verify its email before linking
	// (signin.VerifyFirst), so Linkable is empty and the page says so.
	VerifyFirst bool
	// Password: the user has a password, so the change-password form and
	// the password field of the delete form show.
	Password             bool
	PasswordMinLength    int
	ChangePasswordAction string
	Sessions             []SessionRow
	// FreshSignIn: the session's last sign-in or re-authentication is
	// within ReauthWindow (or the user is a guest), so linking, unlinking
	// and deleting need no password; otherwise the page offers
	// ReauthAction (a password form) and ReauthURL (the step-up page,
	// /auth/reauth: confirm it is you another way, or sign in again).
	FreshSignIn bool
	// ReauthCode: the user has a second factor with codes, so the
	// password form asks for one too; ReauthPasskeyOnly: its only factor
	// is a passkey, so only signing in again re-authenticates.
	ReauthCode, ReauthPasskeyOnly bool
	ReauthAction                  string
	ReauthURL                     string
	ReauthMinutes                 int
	UnlinkAction                  string
	SessionsAction                string
	NameAction                    string
	// NameMaxLength bounds a display name, in characters.
	NameMaxLength int
	// DeleteURL is the confirmation page; DeleteAction the final button's.
	DeleteURL     string
	DeleteAction  string
	SignOutAction string
	SignInURL     string
	AccountURL    string
	// AppURL is where the app starts for a signed-in user (after_sign_in);
	// AppName names it: the site, or the host it is on.
	AppURL  string
	AppName string
	// Factors is the second-factor section, nil when the site offers none
	// (or the user is a guest or the app's).
	Factors *FactorsData
	// Script is the page's one script (passkey.js) when it can add a
	// passkey; empty, no script.
	Script string
}

// Method is one linked sign-in method.
type Method struct {
	Provider string
	Label    string
	Kind     string // github, google, oidc, password, email
	// AccountID is the provider's account ID (the email for password and
	// email); Detail is what the page shows of it.
	AccountID string
	Detail    string
	// CanUnlink is false for the last method.
	CanUnlink bool
}

// SessionRow is one row of the session list.
type SessionRow struct {
	ID       string
	Current  bool
	Browser  string
	System   string
	Provider string
	Created  string
	LastUsed string
}

var errorMessages = map[string]string{
	"cross_site":           "For your security, account changes only work from this site's own account page. Nothing was changed.",
	"method":               "That address can't be used this way. Start again from this page.",
	"bad_form":             "The form could not be read. Nothing was changed.",
	"not_found":            "There is no such page.",
	"unknown_provider":     "That way of signing in isn't set up on this site.",
	"provider_unavailable": "That sign-in provider can't be reached right now. Try again in a moment.",
	"unavailable":          "Your account can't be changed right now. Please try again in a moment.",
	"last_method":          "This is your only way to sign in, so it can't be removed. Link another one first.",
	"not_linked":           "That sign-in method is not linked to your account. Nothing was changed.",
	"account_in_use":       "That account already belongs to another user of this site, so it can't be linked to yours. Nothing was changed.",
	"link_session":         "That link was started from another session. Start it again from this page.",
	"state":                "That link expired or was started in another browser. Please try again.",
	"denied":               "Linking was cancelled. Nothing was changed.",
	"provider":             "The link could not be confirmed with the provider. Please try again.",
	"unknown_session":      "That session has already ended.",
	"reauth":               "To delete your account, enter your password, or sign in again and delete it within 5 minutes. Nothing was deleted.",
	"reauth_methods":       "To add or remove a sign-in method, confirm it is you first: enter your password, or sign in again, then try within 5 minutes. Nothing was changed.",
	"verify_first":         "Verify your email address before adding a sign-in method: use the link we mailed you, or reset your password, which verifies it too. Nothing was changed.",
	"credentials":          "That password is incorrect. Nothing was changed.",
	"too_many_attempts":    "Too many wrong passwords for this account. Wait an hour and try again.",
	"rate_limited":         "Too many requests came from your network. Please wait a while and try again.",
	"app_managed":          "This site manages your account itself, so it can't be changed here. Nothing was changed.",
	"name_long":            fmt.Sprintf("That name is too long: use at most %d characters. Nothing was changed.", MaxNameLength),
	"name_invalid":         "A name can't contain line breaks or other control characters. Nothing was changed.",
	"factor_guest":         "Guests can't add a second factor. Sign up first.",
	"factor_reauth":        "To change your two-step verification, confirm it is you first: enter your password and a code, or sign in again, then change it within 5 minutes. Nothing was changed.",
	"reauth_code":          "The password is right, but the code is not: enter the code your authenticator app shows now, or a backup code. Nothing was changed.",
	"reauth_passkey":       "Your account has a passkey as its second step: sign in again with it to confirm it is you. Nothing was changed.",
	"passkey_expired":      "Adding the passkey took too long or was started in another browser. Please try again.",
	"passkey":              "The passkey could not be added. Please try again.",
	"passkey_exists":       "That passkey is already on your account.",
	"too_many_passkeys":    "You have as many passkeys as an account can have. Remove one first.",
	"no_passkey":           "That passkey is not on your account. Nothing was changed.",
	"totp_expired":         "The setup took too long or was started elsewhere. Start again.",
	"reauth_codes_spent":   "Too many wrong codes were tried in this session. Nothing was changed: sign out and sign in again, or wait 10 minutes.",
	"totp_code":            "That code is not right. Your authenticator app is still on.",
	"no_factor":            "Add a passkey or an authenticator app first.",
}

var notices = map[string]string{
	"linked":            "Linked. You can now sign in with it too.",
	"already_linked":    "That account was already linked to yours.",
	"unlinked":          "Removed. You can no longer sign in with it.",
	"signed_out":        "That session was signed out.",
	"signed_out_others": "Every other session was signed out.",
	"password_changed":  "Your password was changed, and your other sessions were signed out.",
	"passkey_added":     "Passkey added. You can sign in with it, and sign-ins ask for it as a second step.",
	"passkey_removed":   "Passkey removed. It no longer signs you in.",
	"totp_removed":      "Your authenticator app is off. Sign-ins no longer ask for its codes.",
	"reauthenticated":   "Confirmed. For the next 5 minutes you can change how you sign in without confirming again.",
	"name_saved":        "Your name was saved.",
}

func (p *Pages) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		p.fail(w, r, http.StatusMethodNotAllowed, "method")
		return
	}
	sess, ok := p.session(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	p.render(w, r, http.StatusOK, sess, "account", q.Get("error"), q.Get("notice"))
}

// render renders the page of sess's user in mode (account, delete).
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, sess *session.Session, mode, errCode, noticeCode string) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	appManaged := errors.Is(err, session.ErrNotFound)
	if appManaged {
		// A user the app signed in (Convex-Auth-Sign-In) has no record
		// here: its sessions are all this page can manage.
		user, err = &session.User{ID: sess.UserID, Profile: sess.Profile}, nil
	}
	var accounts []session.Account
	var sessions []*session.Session
	if err == nil {
		accounts, err = p.cfg.Users.AccountsOf(ctx, sess.UserID)
	}
	if err == nil {
		sessions, err = p.cfg.Sessions.List(ctx, sess.UserID)
	}
	if err != nil {
		p.logger.Warn("the account page could not read the store", zap.Error(err))
		d := p.frame()
		d.Mode, d.ErrorCode, d.Error = "error", "unavailable", errorMessages["unavailable"]
		p.write(w, r, http.StatusServiceUnavailable, d)
		return
	}
	now := p.cfg.Now()
	d := p.frame()
	d.Mode = mode
	d.Email, d.EmailVerified, d.Name, d.Picture = user.Profile.Email, user.Profile.EmailVerified, user.Profile.Name, user.Profile.Picture
	d.Guest, d.AppManaged = user.Anonymous, appManaged
	d.FreshSignIn = user.Anonymous || p.recent(sess)
	back := signin.PathAccount
	if mode == "delete" {
		back = pathDelete
	}
	// The step-up page re-authenticates this session in place (a
	// provider asked again) or offers to sign in again, and comes back.
	d.ReauthURL = signin.PathReauth + "?" + url.Values{"redirectTo": {back}}.Encode()
	d.ReauthMinutes = int(ReauthWindow / time.Minute)
	if msg, ok := errorMessages[errCode]; ok {
		d.ErrorCode, d.Error = errCode, msg
	} else if msg := signin.RefusalMessage(errCode); msg != "" {
		d.ErrorCode, d.Error = errCode, msg
	}
	if msg, ok := notices[noticeCode]; ok && d.Error == "" {
		d.NoticeCode, d.Notice = noticeCode, msg
	}
	if p.cfg.Password != nil {
		d.PasswordMinLength = p.cfg.Password.MinLength
	}
	linked := map[string]bool{}
	for _, a := range accounts {
		m := Method{Provider: a.Provider, AccountID: a.ProviderAccountID, CanUnlink: len(accounts) > 1}
		switch a.Provider {
		case signin.ProviderPassword:
			m.Label, m.Kind, m.Detail = "Password", signin.ProviderPassword, a.ProviderAccountID
			d.Password = true
		case signin.ProviderEmail:
			m.Label, m.Kind, m.Detail = "Email link", signin.ProviderEmail, a.ProviderAccountID
		default:
			m.Label, m.Kind = a.Provider, provider.KindOIDC
			if info, ok := p.signIn.Provider(a.Provider); ok {
				m.Label, m.Kind = info.Label, info.Kind
			}
		}
		linked[a.Provider] = true
		d.Methods = append(d.Methods, m)
	}
	d.VerifyFirst = !appManaged && signin.VerifyFirst(user)
	for _, info := range p.signIn.Providers() {
		if !linked[info.Name] && !appManaged && !d.VerifyFirst {
			d.Linkable = append(d.Linkable, signin.PageProvider{Name: info.Name, Label: info.Label, Kind: info.Kind, URL: linkPrefix + info.Name})
		}
	}
	if err := p.fillFactors(r, sess, user, &d); err != nil {
		p.logger.Warn("the account page could not read the second factors", zap.Error(err))
		d := PageData{Site: p.signIn.Site(), Mode: "error", ErrorCode: "unavailable", Error: errorMessages["unavailable"]}
		p.write(w, r, http.StatusServiceUnavailable, d)
		return
	}
	for _, x := range sessions {
		browser, system := describeUserAgent(x.UserAgent)
		d.Sessions = append(d.Sessions, SessionRow{
			ID: x.ID, Current: x.ID == sess.ID, Browser: browser, System: system, Provider: p.providerLabel(x.Provider),
			Created: x.CreatedAt.UTC().Format("Jan 2, 2006 15:04 UTC"), LastUsed: agoWords(now.Sub(x.LastUsedAt)),
		})
	}
	p.write(w, r, status, d)
}

// frame is what every mode of the page shows: the site, the way back to
// the app, and where its links and forms go.
func (p *Pages) frame() PageData {
	d := PageData{
		Site:                 p.signIn.Site(),
		ChangePasswordAction: signin.PathChangePassword,
		UnlinkAction:         accountPrefix + "unlink",
		SessionsAction:       accountPrefix + "sessions",
		NameAction:           accountPrefix + "name",
		ReauthAction:         accountPrefix + "reauth",
		NameMaxLength:        MaxNameLength,
		DeleteURL:            pathDelete,
		DeleteAction:         pathDelete,
		SignOutAction:        "/auth/signout",
		SignInURL:            signin.PathSignIn,
		AccountURL:           signin.PathAccount,
		AppURL:               p.cfg.Redirects.AfterSignIn,
		AppName:              p.signIn.Site(),
	}
	// after_sign_in on another allowed origin: name that host.
	if u, err := url.Parse(d.AppURL); err == nil && u.Host != "" {
		d.AppName = u.Host
	}
	return d
}

// providerLabel names a session's provider for people.
func (p *Pages) providerLabel(name string) string {
	switch name {
	case signin.ProviderPassword:
		return "password"
	case signin.ProviderEmail:
		return "email link"
	case signin.ProviderAnonymous:
		return "guest"
	case upstreamProvider:
		return "this site"
	}
	if info, ok := p.signIn.Provider(name); ok {
		return info.Label
	}
	return name
}

// agoWords says how long ago, roughly: "just now", "5 minutes ago".
func agoWords(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// write renders the account template with the sign-in page's headers: no
// caching, no framing, no script.
func (p *Pages) write(w http.ResponseWriter, r *http.Request, status int, d PageData) {
	if d.Script != "" {
		p.signIn.WriteScriptPage(w, r, status, pageTemplate, d, "account")
		return
	}
	p.signIn.WritePage(w, r, status, pageTemplate, d, "account")
}

// readForm checks a posted account form (POST, same origin, small) and
// returns the session it is for. A refusal renders the page with its
// reason, or sends the browser to sign in, and changes nothing.
func (p *Pages) readForm(w http.ResponseWriter, r *http.Request) (*session.Session, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.refuse(w, r, http.StatusMethodNotAllowed, "method")
		return nil, false
	}
	if !p.cfg.Host.SameOrigin(r) {
		p.logger.Info("account change refused: cross-site request", zap.String("path", r.URL.Path))
		p.refuse(w, r, http.StatusForbidden, "cross_site")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, httprule.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, http.StatusBadRequest, "bad_form")
		return nil, false
	}
	return p.session(w, r)
}

// session returns the request's session, or sends the browser to sign in
// (and back here) and returns false.
func (p *Pages) session(w http.ResponseWriter, r *http.Request) (*session.Session, bool) {
	sess, err := p.cfg.Host.Session(r)
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return nil, false
	}
	if sess == nil {
		signin.Redirect(w, r, signin.SignInURL(signin.PathAccount, nil))
		return nil, false
	}
	return sess, true
}

// fail answers a failure with the account page showing code: a form
// posted from a page goes back to it (signin.Service.FailForm), anything
// else gets status and the page.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, status int, code string) {
	p.failTo(w, r, status, code, "account")
}

// failTo is fail for the page in mode (account, delete).
func (p *Pages) failTo(w http.ResponseWriter, r *http.Request, status int, code, mode string) {
	back := signin.FormBack{Path: signin.PathAccount}
	if mode == "delete" {
		back.Path = pathDelete
	}
	p.signIn.FailForm(w, r, code, back, func() { p.refuseIn(w, r, status, code, mode) })
}

// refuse renders the account page with an error: the signed-in user's
// page when there is one, else the page's frame with the message alone.
func (p *Pages) refuse(w http.ResponseWriter, r *http.Request, status int, code string) {
	p.refuseIn(w, r, status, code, "account")
}

// refuseIn is refuse for the page in mode.
func (p *Pages) refuseIn(w http.ResponseWriter, r *http.Request, status int, code, mode string) {
	sess, err := p.cfg.Host.Session(r)
	if err == nil && sess != nil && code != "unavailable" {
		p.render(w, r, status, sess, mode, code, "")
		return
	}
	d := p.frame()
	d.Mode, d.SignInURL = "error", signin.SignInURL(signin.PathAccount, nil)
	d.ErrorCode, d.Error = code, errorMessages[code]
	p.write(w, r, status, d)
}

// back sends the browser to the account page with ?kind=code (error or
// notice).
func back(w http.ResponseWriter, r *http.Request, kind, code string) {
	signin.Redirect(w, r, signin.PathAccount+"?"+kind+"="+code)
}

func storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), httprule.StoreCallTimeout)
}
