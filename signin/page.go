package signin

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"strconv"
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
// shared look ({{template "style"}} inside <style>, {{template "favicon"}}
// in <head>) and the second factor's parts ("totp_setup", "backup_codes",
// "factor_style"), which a custom sign-in page copied from the built-in
// one may use too.
func NewPageTemplate(name string) *template.Template {
	t := template.Must(template.New(name).Funcs(templateFuncs).Parse(styleTemplateText))
	return template.Must(t.Parse(factorPartsText))
}

// templateFuncs are available to the built-in and custom templates.
var templateFuncs = template.FuncMap{
	"icon":       providerIcon,
	"faviconURL": faviconURL,
}

// ParseTemplateFile reads a custom sign-in page. It is an html/template
// executed with PageData; the function icon <kind> returns the built-in
// GitHub or Google logo, and {{template "favicon"}} links the pages' icon.
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
	// LastUsed is the method this browser last signed in with (a
	// provider's name, password or email), from the HttpOnly hint cookie;
	// "" when unknown.
	LastUsed string
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
	// Kind picks the logo (provider.Kind*: github, google, apple,
	// microsoft, gitlab, discord, slack; oidc for a key).
	Kind string
	// URL starts the provider's flow.
	URL string
	// LastUsed marks the provider this browser last signed in with.
	LastUsed bool
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
	"password_common":      "That password is one of the most common passwords, which attackers try first. Choose another.",
	"credentials":          "The email or password is incorrect.",
	"account_exists":       "An account with this email already exists. Sign in with its password instead.",
	"too_many_attempts":    "Too many failed sign-in attempts for this account from here. Wait an hour and try again, or reset your password.",
	"account_locked":       "This account had too many failed sign-in attempts from browsers it does not know. Please wait %s and try again, or reset your password. A browser you signed in with before is not affected.",
	"busy_sign_in":         "Too many sign-ins are failing on this site right now. Please wait %s and try again. A browser you signed in with before is not affected.",
	"too_many_links":       "Too many sign-in links were sent to this address. Wait an hour and try again.",
	"send_failed":          "The sign-in email could not be sent. Please try again in a moment.",
	"link":                 "This sign-in link has expired or was already used. Request a new one below.",
	"rate_limited":         "Too many sign-in requests came from your network. Please wait %s and try again.",
	"busy":                 "Too many people are signing up or asking for links right now. Please wait %s and try again.",
	"code_needed":          "Enter the code from the same email to continue. A link needs its code when it is opened in another browser than the one that asked for it, or was opened before by someone else, such as your mail provider's link scanner.",
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
	} else if msg := RefusalMessage(code); msg != "" {
		d.ErrorCode, d.Error = code, msg
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
	s.markLastUsed(r, &d)
	if d.ErrorCode == "rate_limited" || d.ErrorCode == "busy" || d.ErrorCode == "account_locked" || d.ErrorCode == "busy_sign_in" {
		// The page says in words what Retry-After says, or said to the
		// refused form post that led here.
		wait := w.Header().Get("Retry-After")
		if f := s.flash(r); wait == "" && f.Wait > 0 {
			wait = strconv.Itoa(f.Wait)
		}
		d.Error = fmt.Sprintf(messages[d.ErrorCode], waitWords(wait))
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

// providerIcon returns the logo of a provider kind as inline SVG, drawn
// here (no request leaves the page): Apple's, GitLab's and Discord's marks
// are Simple Icons' (CC0), the others drawn to the brands' guides; any
// other kind gets a key.
func providerIcon(kind string) template.HTML {
	switch kind {
	case "github":
		return `<svg aria-hidden="true" viewBox="0 0 16 16" width="20" height="20"><path fill="currentColor" d="M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82.64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0016 8c0-4.42-3.58-8-8-8z"/></svg>`
	case "google":
		return `<svg aria-hidden="true" viewBox="0 0 48 48" width="20" height="20"><path fill="#EA4335" d="M24 9.5c3.54 0 6.71 1.22 9.21 3.6l6.85-6.85C35.9 2.38 30.47 0 24 0 14.62 0 6.51 5.38 2.56 13.22l7.98 6.19C12.43 13.72 17.74 9.5 24 9.5z"/><path fill="#4285F4" d="M46.98 24.55c0-1.57-.15-3.09-.38-4.55H24v9.02h12.94c-.58 2.96-2.26 5.48-4.78 7.18l7.73 6c4.51-4.18 7.09-10.36 7.09-17.65z"/><path fill="#FBBC05" d="M10.53 28.59c-.48-1.45-.76-2.99-.76-4.59s.27-3.14.76-4.59l-7.98-6.19C.92 16.46 0 20.12 0 24c0 3.88.92 7.54 2.56 10.78l7.97-6.19z"/><path fill="#34A853" d="M24 48c6.48 0 11.93-2.13 15.89-5.81l-7.73-6c-2.15 1.45-4.92 2.3-8.16 2.3-6.26 0-11.57-4.22-13.47-9.91l-7.98 6.19C6.51 42.62 14.62 48 24 48z"/></svg>`
	case "apple":
		return `<svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="currentColor" d="M12.152 6.896c-.948 0-2.415-1.078-3.96-1.04-2.04.027-3.91 1.183-4.961 3.014-2.117 3.675-.546 9.103 1.519 12.09 1.013 1.454 2.208 3.09 3.792 3.039 1.52-.065 2.09-.987 3.935-.987 1.831 0 2.35.987 3.96.948 1.637-.026 2.676-1.48 3.676-2.948 1.156-1.688 1.636-3.325 1.662-3.415-.039-.013-3.182-1.221-3.22-4.857-.026-3.04 2.48-4.494 2.597-4.559-1.429-2.09-3.623-2.324-4.39-2.376-2-.156-3.675 1.09-4.61 1.09zM15.53 3.83c.843-1.012 1.4-2.427 1.245-3.83-1.207.052-2.662.805-3.532 1.818-.78.896-1.454 2.338-1.273 3.714 1.338.104 2.715-.688 3.559-1.701"/></svg>`
	case "microsoft":
		return `<svg aria-hidden="true" viewBox="0 0 21 21" width="20" height="20"><path fill="#f25022" d="M1 1h9v9H1z"/><path fill="#7fba00" d="M11 1h9v9h-9z"/><path fill="#00a4ef" d="M1 11h9v9H1z"/><path fill="#ffb900" d="M11 11h9v9h-9z"/></svg>`
	case "gitlab":
		return `<svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="#fc6d26" d="m23.6004 9.5927-.0337-.0862L20.3.9814a.851.851 0 0 0-.3362-.405.8748.8748 0 0 0-.9997.0539.8748.8748 0 0 0-.29.4399l-2.2055 6.748H7.5375l-2.2057-6.748a.8573.8573 0 0 0-.29-.4412.8748.8748 0 0 0-.9997-.0537.8585.8585 0 0 0-.3362.4049L.4332 9.5015l-.0325.0862a6.0657 6.0657 0 0 0 2.0119 7.0105l.0113.0087.03.0213 4.976 3.7264 2.462 1.8633 1.4995 1.1321a1.0085 1.0085 0 0 0 1.2197 0l1.4995-1.1321 2.4619-1.8633 5.006-3.7489.0125-.01a6.0682 6.0682 0 0 0 2.0094-7.003z"/></svg>`
	case "discord":
		return `<svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="#5865f2" d="M20.317 4.3698a19.7913 19.7913 0 00-4.8851-1.5152.0741.0741 0 00-.0785.0371c-.211.3753-.4447.8648-.6083 1.2495-1.8447-.2762-3.68-.2762-5.4868 0-.1636-.3933-.4058-.8742-.6177-1.2495a.077.077 0 00-.0785-.037 19.7363 19.7363 0 00-4.8852 1.515.0699.0699 0 00-.0321.0277C.5334 9.0458-.319 13.5799.0992 18.0578a.0824.0824 0 00.0312.0561c2.0528 1.5076 4.0413 2.4228 5.9929 3.0294a.0777.0777 0 00.0842-.0276c.4616-.6304.8731-1.2952 1.226-1.9942a.076.076 0 00-.0416-.1057c-.6528-.2476-1.2743-.5495-1.8722-.8923a.077.077 0 01-.0076-.1277c.1258-.0943.2517-.1923.3718-.2914a.0743.0743 0 01.0776-.0105c3.9278 1.7933 8.18 1.7933 12.0614 0a.0739.0739 0 01.0785.0095c.1202.099.246.1981.3728.2924a.077.077 0 01-.0066.1276 12.2986 12.2986 0 01-1.873.8914.0766.0766 0 00-.0407.1067c.3604.698.7719 1.3628 1.225 1.9932a.076.076 0 00.0842.0286c1.961-.6067 3.9495-1.5219 6.0023-3.0294a.077.077 0 00.0313-.0552c.5004-5.177-.8382-9.6739-3.5485-13.6604a.061.061 0 00-.0312-.0286zM8.02 15.3312c-1.1825 0-2.1569-1.0857-2.1569-2.419 0-1.3332.9555-2.4189 2.157-2.4189 1.2108 0 2.1757 1.0952 2.1568 2.419 0 1.3332-.9555 2.4189-2.1569 2.4189zm7.9748 0c-1.1825 0-2.1569-1.0857-2.1569-2.419 0-1.3332.9554-2.4189 2.1569-2.4189 1.2108 0 2.1757 1.0952 2.1568 2.419 0 1.3332-.946 2.4189-2.1568 2.4189Z"/></svg>`
	case "slack":
		return `<svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20">` +
			`<g fill="#36c5f0" stroke="#36c5f0"><path d="M4.1 9.5h6" stroke-width="4.2" stroke-linecap="round"/><path d="M7.4 7.2V4.1a2.1 2.1 0 0 1 4.2 0v3.1z" stroke="none"/></g>` +
			`<g fill="#2eb67d" stroke="#2eb67d" transform="rotate(90 12 12)"><path d="M4.1 9.5h6" stroke-width="4.2" stroke-linecap="round"/><path d="M7.4 7.2V4.1a2.1 2.1 0 0 1 4.2 0v3.1z" stroke="none"/></g>` +
			`<g fill="#ecb22e" stroke="#ecb22e" transform="rotate(180 12 12)"><path d="M4.1 9.5h6" stroke-width="4.2" stroke-linecap="round"/><path d="M7.4 7.2V4.1a2.1 2.1 0 0 1 4.2 0v3.1z" stroke="none"/></g>` +
			`<g fill="#e01e5a" stroke="#e01e5a" transform="rotate(270 12 12)"><path d="M4.1 9.5h6" stroke-width="4.2" stroke-linecap="round"/><path d="M7.4 7.2V4.1a2.1 2.1 0 0 1 4.2 0v3.1z" stroke="none"/></g></svg>`
	}
	if kind == "passkey" {
		return `<svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-6 10v-2a4 4 0 0 1 4-4h4m6 6a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5zm0 0v2m0-7.5V11m3.5 6H22"/></svg>`
	}
	return `<svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M21 2l-2 2m-7.61 7.61a5.5 5.5 0 1 1-7.78 7.78 5.5 5.5 0 0 1 7.78-7.78zm0 0L15.5 7.5m0 0l3 3L22 7l-3-3m-3.5 3.5L19 4"/></svg>`
}
