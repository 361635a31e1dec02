package signin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/provider"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Magic-link defaults.
const (
	DefaultLinkTTL = 15 * time.Minute
	// MaxLinkTTL keeps a link from outliving its purpose.
	MaxLinkTTL = 24 * time.Hour
	// DefaultMaxSends is how many links one address gets per SendWindow.
	DefaultMaxSends   = 5
	DefaultSendWindow = time.Hour
	linkKey           = "email-link:"
	sendRateKey       = "email-send:"
	codeTriesKey      = "email-code-try:"
	codeWrongKey      = "email-code-wrong:"
	// linkCookieName binds a link to the browser that asked for it;
	// __Host- prefixed where the session cookie is.
	linkCookieName = "convex_auth_link"
	bindingChars   = 43 // a randomToken
	codeDigits     = 8
	// MaxCodeTries is how many codes a link accepts before it is dead.
	MaxCodeTries = 5
)

// Email sign-in modes.
const (
	EmailModeLink = "link" // a link, and its code for another browser
	EmailModeCode = "code" // a code only, typed on the page
)

// EmailConfig configures sign-in by email: magic links or codes.
type EmailConfig struct {
	// Mode is EmailModeLink or EmailModeCode. Default: link.
	Mode string
	// Mailer sends the mail when Config.Mail is nil (the older form,
	// provider email { smtp_... }). Default: nil, Config.Mail's.
	Mailer mail.Mailer
	// LinkTTL is how long a link or code works. Default: 15m.
	LinkTTL time.Duration
	// MaxSends and SendWindow are Config.Mail's when Config.Mail is nil.
	MaxSends   int
	SendWindow time.Duration
}

func (c *EmailConfig) fill() error {
	if c.LinkTTL == 0 {
		c.LinkTTL = DefaultLinkTTL
	}
	if c.Mode == "" {
		c.Mode = EmailModeLink
	}
	if c.Mode != EmailModeLink && c.Mode != EmailModeCode {
		return fmt.Errorf("signin: email mode %q is unknown: use link or code", c.Mode)
	}
	if c.LinkTTL < time.Minute || c.LinkTTL > MaxLinkTTL {
		return fmt.Errorf("signin: email link_ttl %s is out of range: use 1m to %s", c.LinkTTL, MaxLinkTTL)
	}
	return nil
}

// Purposes of a mailed link or code.
const (
	purposeSignIn = ""       // email sign-in
	purposeVerify = "verify" // verify an existing user's email
	purposeSignUp = "signup" // a password sign-up waiting for its email (verify_email required)
	purposeReset  = "reset"  // password reset
)

// linkRecord is what the store keeps of a mailed link or code, under its
// token (PutOnce hashes it).
type linkRecord struct {
	Email      string `json:"e"`
	RedirectTo string `json:"r"`
	// Browser is the hash of the binding cookie of the browser that asked.
	Browser string `json:"b"`
	// Code is an HMAC of the mailed code keyed by the token, so the store
	// alone cannot be searched for it.
	Code string `json:"c"`
	// Purpose says which flow the link belongs to; a link of one flow is
	// no link to another.
	Purpose string `json:"p,omitempty"`
	// UserID is the user a verify or reset link is for.
	UserID string `json:"u,omitempty"`
	// Secret is a pending sign-up's password hash.
	Secret string `json:"s,omitempty"`
	// CodeOnly: the code is needed even in the browser that asked (code
	// mode: the token never left that browser's page).
	CodeOnly bool `json:"k,omitempty"`
}

// issue stores rec under a new token, bound to this browser, and returns
// the token and its code. A link of an existing user (owner) is stored as
// that user's, so deleting the user ends it.
func (s *Service) issue(ctx context.Context, w http.ResponseWriter, r *http.Request, rec linkRecord, owner string, ttl time.Duration) (token, code string, err error) {
	return s.issueBound(ctx, s.linkBinding(w, r, ttl), rec, owner, ttl)
}

// issueBound is issue for a browser whose binding cookie is already set.
func (s *Service) issueBound(ctx context.Context, binding string, rec linkRecord, owner string, ttl time.Duration) (token, code string, err error) {
	token, code = randomToken(), randomCode()
	rec.Browser, rec.Code = hashBinding(binding), codeMAC(token, code)
	if owner == "" {
		return token, code, s.cfg.Users.PutOnce(ctx, linkKey+token, marshal(rec), ttl)
	}
	err = s.cfg.Users.PutOnceFor(ctx, owner, linkKey+token, marshal(rec), ttl)
	if errors.Is(err, session.ErrNotFound) && rec.Purpose == purposeSignIn {
		// Deleted meanwhile: the address is an unknown one now.
		err = s.cfg.Users.PutOnce(ctx, linkKey+token, marshal(rec), ttl)
	}
	return token, code, err
}

// signInOwner is the existing user an email sign-in of email would sign in
// as (resolve's first two steps), or "" if it would make a new one.
func (s *Service) signInOwner(ctx context.Context, email string) (string, error) {
	acct, err := s.cfg.Users.GetAccount(ctx, ProviderEmail, email)
	if err == nil {
		return acct.UserID, nil
	}
	if !errors.Is(err, session.ErrNotFound) {
		return "", err
	}
	if s.cfg.LinkByEmail {
		u, err := s.cfg.Users.UserByEmail(ctx, email)
		if err == nil {
			return u.ID, nil
		}
		if !errors.Is(err, session.ErrNotFound) {
			return "", err
		}
	}
	return "", nil
}

// serveEmailRequest handles POST /auth/signin/email: it sends a magic link
// and its code (code mode: a code only) to the address, whether or not an
// account exists for it, and binds the link to this browser with a cookie.
func (s *Service) serveEmailRequest(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	cfg := s.cfg.Email
	redirectTo := s.cfg.Redirects.Resolve(r.PostForm.Get("redirectTo"))
	again := func(status int, code string) {
		d := s.pageFor("signin", code, redirectTo)
		d.Email = truncate(r.PostForm.Get("email"), session.MaxEmailBytes)
		s.render(w, r, status, d)
	}
	email, ok := normalizeAddress(r.PostForm.Get("email"))
	if !ok {
		again(http.StatusBadRequest, "bad_email")
		return
	}
	if s.sendLimited(w, r, "email sign-in", email, again) {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	codeMode := cfg.Mode == EmailModeCode
	owner, err := s.signInOwner(ctx, email)
	var token, code string
	if err == nil {
		token, code, err = s.issue(ctx, w, r, linkRecord{Email: email, RedirectTo: redirectTo, CodeOnly: codeMode}, owner, cfg.LinkTTL)
	}
	if err != nil {
		s.logger.Warn("email sign-in could not save the link", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return
	}
	kind, link := mail.SignInLink, s.cfg.Origin+callbackPrefix+ProviderEmail+"?"+url.Values{"token": {token}}.Encode()
	if codeMode {
		kind, link = mail.SignInCode, ""
	}
	if err := s.sendMail(r.Context(), kind, email, link, code, cfg.LinkTTL); err != nil {
		s.logger.Warn("sending a sign-in mail failed", zap.Error(err))
		again(http.StatusServiceUnavailable, "send_failed")
		return
	}
	s.logger.Info("sign-in mail sent", zap.String("mode", cfg.Mode))
	if codeMode {
		// The token stays in this page: only this browser and the mailed
		// code together sign in.
		d := s.pageFor("confirm_email", "", redirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeMode, d.CodeLength = token, email, true, true, codeDigits
		s.render(w, r, http.StatusOK, d)
		return
	}
	d := s.pageFor("check_email", "", redirectTo)
	d.Email = email
	s.render(w, r, http.StatusOK, d)
}

// serveEmailCallback: GET shows a page naming the account, with a button
// that posts the token back (mail scanners that open links must not use
// them up) and, in a browser that did not ask for the link, a code field.
// POST takes the token, once, and signs in: in the browser that asked for
// the link by itself, anywhere else (and in code mode) only with the
// mailed code.
func (s *Service) serveEmailCallback(w http.ResponseWriter, r *http.Request) (signedIn bool) {
	token, rec, ok := s.openLink(w, r, purposeSignIn)
	if !ok {
		return false
	}
	needCode := rec.CodeOnly || !s.boundHere(r, rec)
	confirm := func(status int, code string) {
		d := s.pageFor("confirm_email", code, rec.RedirectTo)
		d.Token, d.Email, d.NeedCode, d.CodeMode, d.CodeLength = token, rec.Email, needCode, rec.CodeOnly, codeDigits
		s.render(w, r, status, d)
	}
	if r.Method != http.MethodPost {
		confirm(http.StatusOK, "")
		return false
	}
	if needCode && !s.checkCode(w, r, token, rec, s.cfg.Email.LinkTTL, confirm) {
		return false
	}
	if !s.takeLink(w, r, token) {
		return false
	}
	// Opening the link in the browser that asked for it, or typing its
	// code, proves control of the address.
	user, err := s.resolveAs(r.Context(), ProviderEmail, provider.Identity{Subject: rec.Email, Email: rec.Email, EmailVerified: true}, s.currentGuest(r.Context(), r))
	if err != nil {
		s.logger.Warn("email sign-in could not find or create the user", zap.Error(err))
		s.render(w, r, http.StatusServiceUnavailable, s.pageData(r, "signin", "unavailable"))
		return false
	}
	return s.finish(w, r, user, ProviderEmail, rec.RedirectTo)
}

// openLink reads the token of a link page (GET: the query; POST: the form)
// and its record of purpose; on failure it has answered.
func (s *Service) openLink(w http.ResponseWriter, r *http.Request, purposes ...string) (string, linkRecord, bool) {
	var token string
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		token = r.URL.Query().Get("token")
	} else {
		if !s.readForm(w, r) {
			return "", linkRecord{}, false
		}
		token = r.PostForm.Get("token")
	}
	if token == "" || len(token) > 2*randomBytes {
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "link"))
		return "", linkRecord{}, false
	}
	rec, ok := s.peekLink(w, r, token, purposes...)
	return token, rec, ok
}

// takeLink uses the link up; on failure it has answered.
func (s *Service) takeLink(w http.ResponseWriter, r *http.Request, token string) bool {
	ctx, cancel := storeCtx(r)
	_, err := s.cfg.Users.TakeOnce(ctx, linkKey+token)
	cancel()
	return !s.linkFailed(w, r, err)
}

// linkFailed answers a failed read or take of a link and reports whether
// err was a failure.
func (s *Service) linkFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, session.ErrNotFound):
		s.logger.Info("a mailed link was refused: unknown, expired or used")
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "link"))
	default:
		s.logger.Warn("a mailed link could not reach the store", zap.Error(err))
		s.render(w, r, http.StatusServiceUnavailable, s.pageData(r, "signin", "unavailable"))
	}
	return true
}

// peekLink reads the link's record without using it up; a record of
// another purpose is no record. On failure it has answered.
func (s *Service) peekLink(w http.ResponseWriter, r *http.Request, token string, purposes ...string) (linkRecord, bool) {
	var rec linkRecord
	ctx, cancel := storeCtx(r)
	raw, err := s.cfg.Users.PeekOnce(ctx, linkKey+token)
	cancel()
	if s.linkFailed(w, r, err) {
		return rec, false
	}
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Email == "" || rec.Browser == "" || rec.Code == "" || !slices.Contains(purposes, rec.Purpose) {
		s.logger.Info("a mailed link was refused: it belongs to another flow")
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "link"))
		return rec, false
	}
	return rec, true
}

// checkCode reads the typed code, counts the attempt against the link and
// compares it. Every attempt is counted before the comparison, so parallel
// guesses get MaxCodeTries in all; the last wrong one kills the link. On
// failure it has answered (again: the same page with an error).
func (s *Service) checkCode(w http.ResponseWriter, r *http.Request, token string, rec linkRecord, ttl time.Duration, again func(int, string)) bool {
	code := strings.Join(strings.Fields(r.PostForm.Get("code")), "")
	if code == "" {
		again(http.StatusBadRequest, "code_needed")
		return false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	kill := func() {
		if _, err := s.cfg.Users.TakeOnce(ctx, linkKey+token); err != nil && !errors.Is(err, session.ErrNotFound) {
			s.logger.Warn("could not end a guessed link", zap.Error(err))
		}
	}
	ok, err := s.cfg.Users.RateHit(ctx, codeTriesKey+token, MaxCodeTries, ttl)
	if err != nil {
		s.logger.Warn("a code check could not reach the store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return false
	}
	if !ok {
		kill()
		s.logger.Info("a code was refused: too many wrong codes")
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "code_dead"))
		return false
	}
	if constantTimeEqual(codeMAC(token, code), rec.Code) {
		return true
	}
	s.logger.Info("a code was refused: wrong code")
	if last, err := s.cfg.Users.RateHit(ctx, codeWrongKey+token, MaxCodeTries-1, ttl); err == nil && !last {
		kill()
		s.render(w, r, http.StatusBadRequest, s.pageData(r, "signin", "code_dead"))
		return false
	}
	again(http.StatusBadRequest, "code")
	return false
}

// linkBinding returns the browser's link-binding cookie value, a new one
// when it has none, and sets it to last as long as the new link: the
// browser keeps one value for all its pending links.
func (s *Service) linkBinding(w http.ResponseWriter, r *http.Request, ttl time.Duration) string {
	name := s.linkCookie(r)
	v := randomToken()
	if c, err := r.Cookie(name); err == nil && len(c.Value) == bindingChars {
		v = c.Value
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: v, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode,
	})
	return v
}

// boundHere reports whether r comes from the browser that asked for rec.
func (s *Service) boundHere(r *http.Request, rec linkRecord) bool {
	c, err := r.Cookie(s.linkCookie(r))
	return err == nil && c.Value != "" && constantTimeEqual(hashBinding(c.Value), rec.Browser)
}

func (s *Service) linkCookie(r *http.Request) string {
	if httprule.SecureRequest(r) {
		return "__Host-" + linkCookieName + s.cookieSuffix
	}
	return linkCookieName + s.cookieSuffix
}

func hashBinding(v string) string {
	h := sha256.Sum256([]byte("convex-auth link binding\x00" + v))
	return b64url(h[:])
}

func codeMAC(token, code string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(code))
	return b64url(m.Sum(nil))
}

// randomCode is codeDigits random decimal digits, uniform.
func randomCode() string {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(codeDigits), nil)
	n, _ := rand.Int(rand.Reader, limit) // never fails on supported platforms
	return fmt.Sprintf("%0*d", codeDigits, n.Int64())
}

func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
