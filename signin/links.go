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
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Mailed links and codes: the proof of an address that email sign-in,
// verification and reset share. A link's record is stored under its
// token, bound to the browser that asked by a cookie; anywhere else its
// code is needed too.

// Store keys and cookie of mailed links.
const (
	linkKey      = "email-link:"
	sendRateKey  = "email-send:"
	codeTriesKey = "email-code-try:"
	codeWrongKey = "email-code-wrong:"
	// linkSeenKey marks a link another browser presented.
	linkSeenKey  = "email-link-seen:"
	bindingChars = 43 // a randomToken
	codeDigits   = 8
	// MaxCodeTries is how many codes a link accepts before it is dead.
	MaxCodeTries = 5
)

// Purposes of a mailed link or code.
const (
	purposeSignIn = ""       // email sign-in
	purposeVerify = "verify" // verify an existing user's email
	purposeSignUp = "signup" // a password sign-up waiting for its email (verify_email required)
	// purposeSignUpTaken: a sign-up (verify_email required) with an
	// address that has an account; its mail tells the owner, and its
	// token only resends that mail.
	purposeSignUpTaken = "signup-taken"
	purposeReset       = "reset" // password reset
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
	// Guest is the guest the asking browser was signed in as: only that
	// browser, still that guest, may sign up in place with the link.
	Guest string `json:"g,omitempty"`
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

// openedLink is a link page's link as one request presents it.
type openedLink struct {
	token string
	rec   linkRecord
	// bound: the request comes from the browser that asked for the link.
	bound bool
	// needCode: the mailed code is needed here: in code mode, in another
	// browser, and everywhere once another browser presented the link.
	needCode bool
}

// openLink reads the token of a link page (GET and HEAD: the query, else
// the flash a failed post of the page left; POST: the form) and its
// record of purpose, on failure having answered. The
// first presentation from a browser that did not ask for the link (a mail
// scanner, someone who read the URL in a log) makes the link need its
// code from then on, in the browser that asked too: a token alone then
// signs nobody in.
func (s *Service) openLink(w http.ResponseWriter, r *http.Request, purposes ...string) (openedLink, bool) {
	var l openedLink
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if l.token = r.URL.Query().Get("token"); l.token == "" {
			l.token = s.flash(r).Token
		}
	} else {
		if !s.ReadForm(w, r) {
			return l, false
		}
		l.token = r.PostForm.Get("token")
	}
	if l.token == "" || len(l.token) > 2*randomBytes {
		s.failSignIn(w, r, http.StatusBadRequest, "link")
		return l, false
	}
	rec, ok := s.peekLink(w, r, l.token, purposes...)
	if !ok {
		return l, false
	}
	l.rec, l.bound = rec, s.boundHere(r, rec)
	ctx, cancel := storeCtx(r)
	defer cancel()
	var err error
	if l.bound {
		_, err = s.cfg.Users.PeekOnce(ctx, linkSeenKey+l.token)
		presented := err == nil
		if errors.Is(err, session.ErrNotFound) {
			err = nil
		}
		l.needCode = rec.CodeOnly || presented
	} else {
		err = s.cfg.Users.PutOnce(ctx, linkSeenKey+l.token, []byte{1}, s.linkTTL(rec.Purpose))
		l.needCode = true
	}
	if err != nil {
		// Without knowing, the code would be asked or the mark lost: fail.
		s.logger.Warn("a mailed link could not reach the store", zap.Error(err))
		s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
		return l, false
	}
	if !l.bound {
		s.logger.Info("a mailed link was opened in a browser that did not ask for it: it needs its code from now on")
	}
	return l, true
}

// linkTTL is how long a link of purpose lives.
func (s *Service) linkTTL(purpose string) time.Duration {
	switch purpose {
	case purposeVerify, purposeSignUp, purposeSignUpTaken:
		return s.cfg.Password.VerifyTTL
	case purposeReset:
		return s.cfg.Password.ResetTTL
	}
	return s.cfg.Email.LinkTTL
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
		s.failSignIn(w, r, http.StatusBadRequest, "link")
	default:
		s.logger.Warn("a mailed link could not reach the store", zap.Error(err))
		s.failSignIn(w, r, http.StatusServiceUnavailable, "unavailable")
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
		s.failSignIn(w, r, http.StatusBadRequest, "link")
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
		s.failSignIn(w, r, http.StatusBadRequest, "code_dead")
		return false
	}
	if constantTimeEqual(codeMAC(token, code), rec.Code) {
		return true
	}
	s.logger.Info("a code was refused: wrong code")
	if last, err := s.cfg.Users.RateHit(ctx, codeWrongKey+token, MaxCodeTries-1, ttl); err == nil && !last {
		kill()
		s.failSignIn(w, r, http.StatusBadRequest, "code_dead")
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
	return cookies.Name(cookies.Link, httprule.SecureRequest(r), s.cookieSuffix)
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

// sendLimited counts a mail to email against the per-client, global and
// per-address send limits; a refusal is answered through again.
func (s *Service) sendLimited(w http.ResponseWriter, r *http.Request, flow, email string, again func(status int, code string)) bool {
	if s.Limited(w, r, LimitEmailSend, LimitGlobalEmailSend, again) {
		return true
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	m := s.cfg.Mail
	sends := rateLimit{flow: flow, key: sendRateKey + email, max: m.MaxSends, window: m.SendWindow,
		reason: "too many mails sent to the address", code: "too_many_links"}
	return s.overLimit(ctx, sends, again)
}

// sendMail renders and sends one mail of a link or code; the error is
// logged by the caller's rule (never with the link or code).
func (s *Service) sendMail(ctx context.Context, kind, to, link, code string, ttl time.Duration) error {
	return s.deliver(ctx, mail.Data{Kind: kind, SiteName: s.siteName, Site: s.Site(), Email: to, Link: link, Code: code, Expires: humanDuration(ttl)})
}

// deliver renders d and sends it. A template that fails is logged here
// (an operator's mistake); other errors are the caller's to log.
func (s *Service) deliver(ctx context.Context, d mail.Data) error {
	msg, err := s.mailTemplates.Render(d)
	if err != nil {
		s.logger.Error("a mail template failed", zap.String("kind", d.Kind), zap.Error(err))
		return err
	}
	return s.cfg.Mail.Mailer.Send(ctx, msg)
}
