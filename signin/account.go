package signin

import (
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// The account page and its forms.
const (
	PathAccount   = "/auth/account"
	accountPrefix = PathAccount + "/"
	// PathChangePassword is where the account page's change-password form
	// posts (fields current, password, confirm).
	PathChangePassword = "/auth/password/change"
	// ReauthWindow is how recent a sign-in must be to delete the account
	// without typing the password.
	ReauthWindow = 5 * time.Minute
)

//go:embed templates/account.html
var accountTemplateText string

var accountTemplate = template.Must(newPageTemplate("account").Parse(accountTemplateText))

// AccountData is what the account page template gets.
type AccountData struct {
	Site string
	// Mode is "account", or "deleted" once the account is gone.
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
	// not linked yet (each a POST form to LinkAction).
	Methods  []AccountMethod
	Linkable []PageProvider
	// Password: the user has a password, so the change-password form and
	// the password field of the delete form show.
	Password             bool
	PasswordMinLength    int
	ChangePasswordAction string
	Sessions             []AccountSession
	// FreshSignIn: the session began within ReauthWindow (or the user is
	// a guest), so deleting needs no password.
	FreshSignIn    bool
	ReauthURL      string
	ReauthMinutes  int
	UnlinkAction   string
	SessionsAction string
	DeleteAction   string
	SignOutAction  string
	SignInURL      string
}

// AccountMethod is one linked sign-in method.
type AccountMethod struct {
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

// AccountSession is one row of the session list.
type AccountSession struct {
	ID       string
	Current  bool
	Browser  string
	System   string
	Provider string
	Created  string
	LastUsed string
}

var accountErrors = map[string]string{
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
	"credentials":          "That password is incorrect. Nothing was deleted.",
	"too_many_attempts":    "Too many wrong passwords for this account. Wait an hour and try again.",
	"rate_limited":         "Too many requests came from your network. Please wait a while and try again.",
	"app_managed":          "This site manages your account itself, so it can't be changed here. Nothing was changed.",
}

var accountNotices = map[string]string{
	"linked":            "Linked. You can now sign in with it too.",
	"already_linked":    "That account was already linked to yours.",
	"unlinked":          "Removed. You can no longer sign in with it.",
	"signed_out":        "That session was signed out.",
	"signed_out_others": "Every other session was signed out.",
	"password_changed":  "Your password was changed, and your other sessions were signed out.",
}

// serveAccount serves /auth/account (sub "") and its forms.
func (s *Service) serveAccount(w http.ResponseWriter, r *http.Request, sub string) {
	switch sub {
	case "":
		s.serveAccountPage(w, r)
	case "/unlink":
		s.serveUnlink(w, r)
	case "/sessions":
		s.serveEndSession(w, r)
	case "/delete":
		s.serveDeleteAccount(w, r)
	default:
		s.accountError(w, r, http.StatusNotFound, "not_found")
	}
}

func (s *Service) serveAccountPage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.accountError(w, r, http.StatusMethodNotAllowed, "method")
		return
	}
	sess, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	s.renderAccount(w, r, http.StatusOK, sess, q.Get("error"), q.Get("notice"))
}

// accountForm checks a posted account form: POST, same origin, small.
// A refusal renders the page with its reason and changes nothing.
func (s *Service) accountForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.accountError(w, r, http.StatusMethodNotAllowed, "method")
		return false
	}
	if !s.cfg.Host.SameOrigin(r) {
		s.logger.Info("account change refused: cross-site request", zap.String("path", r.URL.Path))
		s.accountError(w, r, http.StatusForbidden, "cross_site")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, httprule.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.accountError(w, r, http.StatusBadRequest, "bad_form")
		return false
	}
	return true
}

// accountSession returns the request's session, or sends the browser to
// sign in (and back here) and returns false.
func (s *Service) accountSession(w http.ResponseWriter, r *http.Request) (*session.Session, bool) {
	sess, err := s.cfg.Host.Session(r)
	if err != nil {
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return nil, false
	}
	if sess == nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, withRedirect(PathSignIn, PathAccount, nil), http.StatusSeeOther)
		return nil, false
	}
	return sess, true
}

// accountError renders the page with an error: the signed-in user's page
// when there is one, else the page's frame with the message alone.
func (s *Service) accountError(w http.ResponseWriter, r *http.Request, status int, code string) {
	sess, err := s.cfg.Host.Session(r)
	if err == nil && sess != nil && code != "unavailable" {
		s.renderAccount(w, r, status, sess, code, "")
		return
	}
	d := AccountData{Site: s.site(), Mode: "error", SignInURL: withRedirect(PathSignIn, PathAccount, nil)}
	d.ErrorCode, d.Error = code, accountErrors[code]
	s.writeAccount(w, r, status, d)
}

func (s *Service) site() string {
	return s.pageFor("signin", "", "").Site
}

// renderAccount renders the page of sess's user.
func (s *Service) renderAccount(w http.ResponseWriter, r *http.Request, status int, sess *session.Session, errCode, noticeCode string) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := s.cfg.Users.GetUser(ctx, sess.UserID)
	appManaged := errors.Is(err, session.ErrNotFound)
	if appManaged {
		// A user the app signed in (Convex-Auth-Sign-In) has no record
		// here: its sessions are all this page can manage.
		user, err = &session.User{ID: sess.UserID, Profile: sess.Profile}, nil
	}
	var accounts []session.Account
	var sessions []*session.Session
	if err == nil {
		accounts, err = s.cfg.Users.AccountsOf(ctx, sess.UserID)
	}
	if err == nil {
		sessions, err = s.cfg.Sessions.List(ctx, sess.UserID)
	}
	if err != nil {
		s.logger.Warn("the account page could not read the store", zap.Error(err))
		d := AccountData{Site: s.site(), Mode: "error", ErrorCode: "unavailable", Error: accountErrors["unavailable"]}
		s.writeAccount(w, r, http.StatusServiceUnavailable, d)
		return
	}
	now := s.now()
	d := AccountData{
		Site: s.site(), Mode: "account",
		Email: user.Profile.Email, EmailVerified: user.Profile.EmailVerified, Name: user.Profile.Name, Picture: user.Profile.Picture,
		Guest:                user.Anonymous,
		AppManaged:           appManaged,
		ChangePasswordAction: PathChangePassword,
		FreshSignIn:          user.Anonymous || now.Sub(sess.CreatedAt) < ReauthWindow,
		ReauthURL:            withRedirect(PathSignIn, PathAccount+"#delete", url.Values{"reauth": {"1"}}),
		ReauthMinutes:        int(ReauthWindow / time.Minute),
		UnlinkAction:         accountPrefix + "unlink",
		SessionsAction:       accountPrefix + "sessions",
		DeleteAction:         accountPrefix + "delete",
		SignOutAction:        "/auth/signout",
		SignInURL:            PathSignIn,
	}
	if msg, ok := accountErrors[errCode]; ok {
		d.ErrorCode, d.Error = errCode, msg
	}
	if msg, ok := accountNotices[noticeCode]; ok && d.Error == "" {
		d.NoticeCode, d.Notice = noticeCode, msg
	}
	if s.cfg.Password != nil {
		d.PasswordMinLength = s.cfg.Password.MinLength
	}
	linked := map[string]bool{}
	for _, a := range accounts {
		m := AccountMethod{Provider: a.Provider, AccountID: a.ProviderAccountID, CanUnlink: len(accounts) > 1}
		switch a.Provider {
		case ProviderPassword:
			m.Label, m.Kind, m.Detail = "Password", ProviderPassword, a.ProviderAccountID
			d.Password = true
		case ProviderEmail:
			m.Label, m.Kind, m.Detail = "Email link", ProviderEmail, a.ProviderAccountID
		default:
			m.Label, m.Kind = a.Provider, "oidc"
			if p := s.oauth[a.Provider]; p != nil {
				m.Label, m.Kind = p.info.Label, p.info.Kind
			}
		}
		linked[a.Provider] = true
		d.Methods = append(d.Methods, m)
	}
	for _, p := range s.oauthList {
		if !linked[p.info.Name] && !appManaged {
			d.Linkable = append(d.Linkable, PageProvider{Name: p.info.Name, Label: p.info.Label, Kind: p.info.Kind, URL: linkPrefix + p.info.Name})
		}
	}
	for _, x := range sessions {
		browser, system := describeUserAgent(x.UserAgent)
		d.Sessions = append(d.Sessions, AccountSession{
			ID: x.ID, Current: x.ID == sess.ID, Browser: browser, System: system, Provider: s.providerLabel(x.Provider),
			Created: x.CreatedAt.UTC().Format("Jan 2, 2006 15:04 UTC"), LastUsed: agoWords(now.Sub(x.LastUsedAt)),
		})
	}
	s.writeAccount(w, r, status, d)
}

// providerLabel names a session's provider for people.
func (s *Service) providerLabel(name string) string {
	switch name {
	case ProviderPassword:
		return "password"
	case ProviderEmail:
		return "email link"
	case ProviderAnonymous:
		return "guest"
	case "upstream":
		return "this site"
	}
	if p := s.oauth[name]; p != nil {
		return p.info.Label
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

// writeAccount renders the account template with the sign-in page's
// headers: no caching, no framing, no script.
func (s *Service) writeAccount(w http.ResponseWriter, r *http.Request, status int, d AccountData) {
	s.writePage(w, r, status, accountTemplate, d, "account")
}

// serveUnlink removes one linked method (fields provider, account), never
// the last one.
func (s *Service) serveUnlink(w http.ResponseWriter, r *http.Request) {
	if !s.accountForm(w, r) {
		return
	}
	sess, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	provider, accountID := r.PostForm.Get("provider"), r.PostForm.Get("account")
	ctx, cancel := storeCtx(r)
	defer cancel()
	accounts, err := s.cfg.Users.AccountsOf(ctx, sess.UserID)
	if err != nil {
		s.logger.Warn("unlink could not reach the store", zap.Error(err))
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	found := false
	for _, a := range accounts {
		found = found || (a.Provider == provider && a.ProviderAccountID == accountID)
	}
	switch {
	case !found:
		s.renderAccount(w, r, http.StatusNotFound, sess, "not_linked", "")
		return
	case len(accounts) < 2:
		s.renderAccount(w, r, http.StatusConflict, sess, "last_method", "")
		return
	}
	if err := s.cfg.Users.DeleteAccount(ctx, provider, accountID); err != nil && !errors.Is(err, session.ErrNotFound) {
		s.logger.Warn("unlink could not reach the store", zap.Error(err))
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	s.logger.Info("account unlinked", zap.String("provider", provider), zap.String("user_id", sess.UserID))
	s.redirect(w, r, PathAccount+"?notice=unlinked")
}

// serveEndSession signs out one of the user's sessions (field id) or all
// but this one (field others=1).
func (s *Service) serveEndSession(w http.ResponseWriter, r *http.Request) {
	if !s.accountForm(w, r) {
		return
	}
	sess, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	if r.PostForm.Get("others") == "1" {
		n, err := s.cfg.Sessions.DeleteUser(ctx, sess.UserID, sess.ID)
		if err != nil {
			s.logger.Warn("signing out other sessions could not reach the store", zap.Error(err))
			s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
			return
		}
		s.logger.Info("signed out other sessions", zap.String("user_id", sess.UserID), zap.Int("sessions", n))
		s.redirect(w, r, PathAccount+"?notice=signed_out_others")
		return
	}
	id := r.PostForm.Get("id")
	err := s.cfg.Sessions.DeleteByID(ctx, sess.UserID, id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		s.renderAccount(w, r, http.StatusNotFound, sess, "unknown_session", "")
		return
	case err != nil:
		s.logger.Warn("signing out a session could not reach the store", zap.Error(err))
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	s.logger.Info("signed out a session", zap.String("user_id", sess.UserID), zap.String("session_id", id))
	if id == sess.ID {
		s.redirect(w, r, PathSignIn)
		return
	}
	s.redirect(w, r, PathAccount+"?notice=signed_out")
}

// serveDeleteAccount removes the user, its accounts and sessions. It needs
// the password (field password) or a sign-in within ReauthWindow; a guest
// needs neither.
func (s *Service) serveDeleteAccount(w http.ResponseWriter, r *http.Request) {
	if !s.accountForm(w, r) {
		return
	}
	sess, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := s.cfg.Users.GetUser(ctx, sess.UserID)
	if errors.Is(err, session.ErrNotFound) {
		s.renderAccount(w, r, http.StatusNotFound, sess, "app_managed", "")
		return
	}
	var accounts []session.Account
	if err == nil {
		accounts, err = s.cfg.Users.AccountsOf(ctx, sess.UserID)
	}
	if err != nil {
		s.logger.Warn("account deletion could not reach the store", zap.Error(err))
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	allowed := user.Anonymous || s.now().Sub(sess.CreatedAt) < ReauthWindow
	if password := r.PostForm.Get("password"); !allowed && password != "" {
		var pw *session.Account
		for i := range accounts {
			if accounts[i].Provider == ProviderPassword {
				pw = &accounts[i]
			}
		}
		code, ok := s.checkPassword(r, pw, password)
		if !ok {
			status := http.StatusUnauthorized
			switch code {
			case "unavailable":
				status = http.StatusServiceUnavailable
			case "too_many_attempts":
				status = http.StatusTooManyRequests
			}
			s.renderAccount(w, r, status, sess, code, "")
			return
		}
		allowed = true
	}
	if !allowed {
		s.renderAccount(w, r, http.StatusForbidden, sess, "reauth", "")
		return
	}
	if err := s.cfg.Users.PurgeUser(ctx, user.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
		s.logger.Warn("account deletion could not reach the store", zap.Error(err))
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	s.logger.Info("account deleted", zap.String("user_id", user.ID))
	s.writeAccount(w, r, http.StatusOK, AccountData{Site: s.site(), Mode: "deleted", SignInURL: PathSignIn})
}

// checkPassword checks password against the user's password account,
// counting a wrong one against the account's attempt limit as sign-in
// does. It returns the page's error code when it fails.
func (s *Service) checkPassword(r *http.Request, acct *session.Account, password string) (string, bool) {
	if acct == nil || s.hashSlots == nil || len(password) > MaxPasswordLength {
		return "credentials", false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	cfg := s.cfg.Password
	key := passwordRateKey + acct.ProviderAccountID
	allowed, err := s.cfg.Users.RateHit(ctx, key, cfg.MaxAttempts, cfg.AttemptWindow)
	if err != nil {
		return "unavailable", false
	}
	if !allowed {
		return "too_many_attempts", false
	}
	var match bool
	if err := s.hashing(ctx, func() error {
		match, _ = VerifyPassword(password, acct.Secret)
		return nil
	}); err != nil || !match {
		return "credentials", false
	}
	_ = s.cfg.Users.RateReset(ctx, key)
	return "", true
}
