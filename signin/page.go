package signin

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/convex-auth/caddy-convex-auth/passkey"

	"go.uber.org/zap"
)

//go:embed templates/signin.html
var defaultTemplateText string

var defaultTemplate = template.Must(NewPageTemplate("signin").Parse(defaultTemplateText))

//go:embed templates/style.html
var styleTemplateText string

//go:embed templates/factor_parts.html
var factorPartsText string

// NewPageTemplate starts a page template with the shared functions, the
// shared look ({{template "style"}} inside <style>) and the second
// factor's parts ("totp_setup", "backup_codes", "factor_style"), which a
// custom sign-in page copied from the built-in one may use too.
func NewPageTemplate(name string) *template.Template {
	t := template.Must(template.New(name).Funcs(templateFuncs).Parse(styleTemplateText))
	return template.Must(t.Parse(factorPartsText))
}

// templateFuncs are available to the built-in and custom templates.
var templateFuncs = template.FuncMap{
	"icon": providerIcon,
}

// ParseTemplateFile reads a custom sign-in page. It is an html/template
// executed with PageData; the function icon <kind> returns the built-in
// GitHub or Google logo.
func ParseTemplateFile(path string) (*template.Template, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signin: sign_in_template: %w", err)
	}
	t, err := NewPageTemplate("signin").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("signin: sign_in_template %s: %w", path, err)
	}
	return t, nil
}

// PageData is what the sign-in page template gets.
type PageData struct {
	// Mode is "signin", "signup" (password sign-up form), "check_email"
	// (a link was sent), "confirm_email" (the link was opened, or a code
	// was sent in code mode), "verify_sent" (a verification link was
	// sent), "verify" (its link was opened), "forgot" (asks for the
	// address to reset), "reset_sent", "reset" (the new password) or
	// "change_password" (a refused change from the account page).
	Mode string
	// Error is a sentence for the user, or empty; ErrorCode names it.
	Error     string
	ErrorCode string
	// Site is the site's host, e.g. app.example.com.
	Site string
	// RedirectTo is where the browser goes after signing in (validated).
	RedirectTo string
	// Email prefills the email fields.
	Email string
	// Token is the magic-link token (confirm_email).
	Token string
	// NeedCode asks for the mailed code (confirm_email in a browser that
	// did not ask for the link); CodeLength is its number of digits.
	NeedCode   bool
	CodeLength int
	// CodeMode: the email provider mails codes only (no link).
	CodeMode bool
	// Notice is a success sentence for the user, or empty.
	Notice string
	// LinkExpires is how long a magic link works, in words ("15 minutes").
	LinkExpires string
	// OAuth lists the OAuth and OIDC providers.
	OAuth []PageProvider
	// Password and EmailLink say which forms to show.
	Password          bool
	PasswordMinLength int
	EmailLink         bool
	// Forgot offers "Forgot password?" (password and mail configured).
	Forgot bool
	// Guest shows "Continue as guest", a form posting to GuestAction.
	Guest bool
	// Passkey shows "Sign in with a passkey" (the sign-in mode only): its
	// form posts the browser's answer to PasskeyAction, and passkey.js
	// fetches its options from PasskeyOptions.
	Passkey bool
	// PasskeyAutofill offers passkeys in the email field's autofill
	// (conditional mediation); not on the page after a refused passkey.
	PasskeyAutofill bool
	PasskeyAction   string
	PasskeyOptions  string
	// Script is the URL of the page's one script (passkey.js), or empty:
	// the page then runs no script at all.
	Script string
	// Links and form actions; each keeps redirectTo.
	SignInURL      string
	SignUpURL      string
	PasswordAction string
	EmailAction    string
	ConfirmAction  string
	ForgotURL      string
	ForgotAction   string
	ResetAction    string
	VerifyAction   string
	ResendAction   string
	ChangeAction   string
	AccountURL     string
	GuestAction    string
}

// PageProvider is one provider button.
type PageProvider struct {
	Name  string
	Label string
	// Kind is "github", "google" or "oidc", for the logo.
	Kind string
	// URL starts the provider's flow.
	URL string
}

// messages are the error sentences by code; unknown codes show nothing.
var messages = map[string]string{
	"state":                "This sign-in expired or was started in another browser. Please try again.",
	"denied":               "Sign-in was cancelled. Choose a way to sign in to try again.",
	"provider":             "The sign-in could not be confirmed with the provider. Please try again.",
	"provider_unavailable": "That sign-in provider can't be reached right now. Try again in a moment, or use another way to sign in.",
	"unavailable":          "Sign-in isn't available right now. Please try again in a moment.",
	"banned":               "This account is banned from signing in to this site. Contact the site's owner if you think this is a mistake.",
	"unknown_provider":     "That way of signing in isn't set up on this site.",
	"method":               "That address can't be used this way. Start again from this page.",
	"cross_site":           "For your security, sign-in forms only work from this site's own sign-in page. Please try again here.",
	"bad_form":             "The form could not be read. Please try again.",
	"bad_email":            "Enter a valid email address, like name@example.com.",
	"password_short":       "Choose a longer password: at least %d characters.",
	"password_long":        "That password is too long: use at most 256 characters.",
	"credentials":          "The email or password is incorrect.",
	"account_exists":       "An account with this email already exists. Sign in with its password instead.",
	"too_many_attempts":    "Too many failed sign-in attempts for this account. Wait an hour and try again, or use another way to sign in.",
	"too_many_links":       "Too many sign-in links were sent to this address. Wait an hour and try again.",
	"send_failed":          "The sign-in email could not be sent. Please try again in a moment.",
	"link":                 "This sign-in link has expired or was already used. Request a new one below.",
	"rate_limited":         "Too many sign-in requests came from your network. Please wait %s and try again.",
	"busy":                 "Too many people are signing up or asking for links right now. Please wait %s and try again.",
	"code_needed":          "This link was opened in another browser than the one that asked for it. Enter the code from the same email to continue.",
	"code":                 "That code is not right. Check the email and try again.",
	"code_dead":            "Too many wrong codes: this link or code no longer works. Request a new one.",
	"password_mismatch":    "The two passwords are not the same. Type the new password twice.",
	"current_password":     "Your current password is not right. Nothing was changed.",
	"no_password":          "This account has no password to change: it signs in another way.",
	"signed_out":           "Sign in first, then try again.",
	"verify_needed":        "Verify your email address before signing in. We sent you a new link.",
	"verify_password":      "The code or the password is not right. Check both and try again.",
	"passkey":              "That passkey could not sign you in. Try again, or use another way to sign in.",
	"passkey_expired":      "The passkey sign-in expired or was started in another browser. Please try again.",
	"challenge_expired":    "This sign-in expired or was started in another browser. Please sign in again.",
	"challenge_dead":       "Too many wrong codes. Sign in again to get a new try.",
}

// notices are the success sentences by code, shown in place of an error.
var notices = map[string]string{
	"verify_resent": "We sent a new link. Earlier links no longer work.",
}

// Page fills the sign-in page in mode for r, with the query's redirectTo
// and the sentence of the error or notice code.
func (s *Service) Page(r *http.Request, mode, code string) PageData {
	return s.PageFor(mode, code, r.URL.Query().Get("redirectTo"))
}

// PageFor is Page with redirectTo given; it is kept only if the redirect
// policy allows it.
func (s *Service) PageFor(mode, code, redirectTo string) PageData {
	if !s.cfg.Redirects.Allowed(redirectTo) {
		redirectTo = ""
	}
	d := PageData{
		Mode:       mode,
		ErrorCode:  code,
		Site:       s.Site(),
		RedirectTo: redirectTo,
		Password:   s.cfg.Password != nil,
		EmailLink:  s.cfg.Email != nil,
		Guest:      s.cfg.Anonymous != nil,
	}
	if msg, ok := notices[code]; ok {
		d.Notice, code = msg, ""
	}
	if msg, ok := messages[code]; ok {
		d.ErrorCode = code
		d.Error = msg
		if code == "too_many_links" && mode != "signin" {
			d.Error = "Too many emails were sent to this address. Wait an hour and try again."
		}
		if code == "password_short" && s.cfg.Password != nil {
			d.Error = fmt.Sprintf(msg, s.cfg.Password.MinLength)
		}
	} else {
		d.ErrorCode = ""
	}
	if s.cfg.Password != nil {
		d.PasswordMinLength = s.cfg.Password.MinLength
	}
	if s.cfg.Email != nil {
		d.LinkExpires = humanDuration(s.cfg.Email.LinkTTL)
		d.CodeMode = s.cfg.Email.Mode == EmailModeCode
	}
	for _, p := range s.oauthList {
		d.OAuth = append(d.OAuth, PageProvider{Name: p.info.Name, Label: p.info.Label, Kind: p.info.Kind, URL: withRedirect(signInPrefix+p.info.Name, redirectTo, nil)})
	}
	d.SignInURL = withRedirect(PathSignIn, redirectTo, nil)
	d.SignUpURL = withRedirect(PathSignIn, redirectTo, url.Values{"mode": {"signup"}})
	d.PasswordAction = signInPrefix + ProviderPassword
	d.EmailAction = signInPrefix + ProviderEmail
	d.ConfirmAction = callbackPrefix + ProviderEmail
	d.Forgot = s.cfg.Password != nil && s.cfg.Mail != nil
	d.ForgotURL = withRedirect(PathForgotPassword, redirectTo, nil)
	d.ForgotAction = PathForgotPassword
	d.ResetAction = PathResetPassword
	d.VerifyAction = PathVerify
	d.ResendAction = PathVerifyResend
	d.ChangeAction = PathChangePassword
	d.AccountURL = PathAccount
	d.GuestAction = signInPrefix + ProviderAnonymous
	if s.rp != nil && mode == "signin" {
		d.Passkey, d.Script = true, passkey.ScriptPath
		d.PasskeyAutofill = code != "passkey" && code != "passkey_expired"
		d.PasskeyAction, d.PasskeyOptions = signInPrefix+ProviderPasskey, PathPasskeyOptions
	}
	return d
}

// SignInURL is the sign-in page's URL that sends the browser on to
// redirectTo, with q.
func SignInURL(redirectTo string, q url.Values) string {
	return withRedirect(PathSignIn, redirectTo, q)
}

// withRedirect adds redirectTo and q to path.
func withRedirect(path, redirectTo string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	if redirectTo != "" {
		q.Set("redirectTo", redirectTo)
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// Render writes the sign-in page with headers that keep it out of caches,
// frames and Referer headers (a magic-link URL holds its token).
func (s *Service) Render(w http.ResponseWriter, r *http.Request, status int, d PageData) {
	if d.RedirectTo != "" && !s.cfg.Redirects.Allowed(d.RedirectTo) {
		d.RedirectTo = ""
	}
	if d.ErrorCode == "rate_limited" || d.ErrorCode == "busy" {
		// The page says in words what Retry-After says.
		d.Error = fmt.Sprintf(messages[d.ErrorCode], waitWords(w.Header().Get("Retry-After")))
	}
	s.writePage(w, r, status, s.page, d, "sign-in", d.Script != "")
}

// WritePage renders t with d and writes it with headers that keep it out of
// caches, frames and Referer headers, and allow no script. what names the
// page in the error a broken template gives.
func (s *Service) WritePage(w http.ResponseWriter, r *http.Request, status int, t *template.Template, d any, what string) {
	s.writePage(w, r, status, t, d, what, false)
}

// WriteScriptPage is WritePage for a page that loads passkey.js: its
// policy allows that one script of this site, and its fetches to this
// site, and nothing inline.
func (s *Service) WriteScriptPage(w http.ResponseWriter, r *http.Request, status int, t *template.Template, d any, what string) {
	s.writePage(w, r, status, t, d, what, true)
}

func (s *Service) writePage(w http.ResponseWriter, r *http.Request, status int, t *template.Template, d any, what string, script bool) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		s.logger.Error("rendering the "+what+" page failed", zap.Error(err))
		http.Error(w, "the "+what+" page could not be rendered: see the server log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", s.contentSecurityPolicy(script))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// contentSecurityPolicy allows inline styles and images, form posts (and
// the redirects after them) to this site and the allowed redirect
// origins, and no script; with script, this site's scripts (passkey.js,
// never inline) and fetches to this site.
func (s *Service) contentSecurityPolicy(script bool) string {
	actions := []string{"'self'"}
	actions = append(actions, s.cfg.Redirects.Origins...)
	if u, err := url.Parse(s.cfg.Redirects.AfterSignIn); err == nil && u.Host != "" {
		actions = append(actions, u.Scheme+"://"+u.Host)
	}
	scripts := ""
	if script {
		scripts = "script-src 'self'; connect-src 'self'; "
	}
	return "default-src 'none'; " + scripts + "style-src 'unsafe-inline'; img-src 'self' data:; form-action " +
		strings.Join(actions, " ") + "; frame-ancestors 'none'; base-uri 'none'"
}

// providerIcon returns the logo of a provider kind as inline SVG.
func providerIcon(kind string) template.HTML {
	switch kind {
	case "github":
		return `<svg aria-hidden="true" viewBox="0 0 16 16" width="20" height="20"><path fill="currentColor" d="M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82.64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0016 8c0-4.42-3.58-8-8-8z"/></svg>`
	case "google":
		return `<svg aria-hidden="true" viewBox="0 0 48 48" width="20" height="20"><path fill="#EA4335" d="M24 9.5c3.54 0 6.71 1.22 9.21 3.6l6.85-6.85C35.9 2.38 30.47 0 24 0 14.62 0 6.51 5.38 2.56 13.22l7.98 6.19C12.43 13.72 17.74 9.5 24 9.5z"/><path fill="#4285F4" d="M46.98 24.55c0-1.57-.15-3.09-.38-4.55H24v9.02h12.94c-.58 2.96-2.26 5.48-4.78 7.18l7.73 6c4.51-4.18 7.09-10.36 7.09-17.65z"/><path fill="#FBBC05" d="M10.53 28.59c-.48-1.45-.76-2.99-.76-4.59s.27-3.14.76-4.59l-7.98-6.19C.92 16.46 0 20.12 0 24c0 3.88.92 7.54 2.56 10.78l7.97-6.19z"/><path fill="#34A853" d="M24 48c6.48 0 11.93-2.13 15.89-5.81l-7.73-6c-2.15 1.45-4.92 2.3-8.16 2.3-6.26 0-11.57-4.22-13.47-9.91l-7.98 6.19C6.51 42.62 14.62 48 24 48z"/></svg>`
	}
	if kind == "passkey" {
		return `<svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-6 10v-2a4 4 0 0 1 4-4h4m6 6a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5zm0 0v2m0-7.5V11m3.5 6H22"/></svg>`
	}
	return `<svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M21 2l-2 2m-7.61 7.61a5.5 5.5 0 1 1-7.78 7.78 5.5 5.5 0 0 1 7.78-7.78zm0 0L15.5 7.5m0 0l3 3L22 7l-3-3m-3.5 3.5L19 4"/></svg>`
}
