package signin

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/passkey"
	"github.com/convex-auth/caddy-convex-auth/secondfactor"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// The second-factor challenge: after any first factor (a password, an
// OAuth or OIDC provider, an email link or code, a guest signing in to an
// account), a user with a second factor is sent here before any session
// exists. The pending sign-in is a sealed cookie of this browser, short
// lived; the challenge is passed with a code from the authenticator app,
// a backup code or a passkey, and ends after MaxCodeAttempts codes. Under
// second_factor required, a user without a factor enrols one here first.

// Paths of the challenge.
const (
	PathChallenge               = "/auth/challenge"
	pathChallengeEnrol          = PathChallenge + "/enrol"
	pathChallengePasskeyOptions = PathChallenge + "/passkey/options"
	pathChallengePasskey        = PathChallenge + "/passkey"
)

const (
	challengePurpose = "convex_auth second factor challenge v1"
	// ChallengeTTL is how long a challenge may take after the first
	// factor.
	ChallengeTTL = 10 * time.Minute
)

// pendingSignIn is a sign-in whose first factor passed, sealed in the
// challenge cookie.
type pendingSignIn struct {
	// ID names the challenge: its codes are counted under it.
	ID             string   `json:"i"`
	UserID         string   `json:"u"`
	Provider       string   `json:"p"`
	AMR            []string `json:"a,omitempty"`
	Target         string   `json:"t,omitempty"`
	UpgradedGuest  bool     `json:"g,omitempty"`
	ReplacedUserID string   `json:"r,omitempty"`
	// MaxTTL caps the session (an admission rule's admission_ttl).
	MaxTTL time.Duration `json:"m,omitempty"`
	// Enrol: second_factor required, and the user has no factor yet.
	Enrol   bool  `json:"e,omitempty"`
	Expires int64 `json:"x"`
}

func (s *Service) challengeCookie(r *http.Request) string {
	return cookies.Name(cookies.Challenge, httprule.SecureRequest(r), s.cookieSuffix)
}

// secondFactorOn reports whether sign-ins ask for second factors.
func (s *Service) secondFactorOn() bool {
	sf := s.cfg.SecondFactor
	return s.factors != nil && (sf == nil || sf.Mode != SecondFactorOff)
}

// TOTPOn reports whether authenticator apps are offered.
func (s *Service) TOTPOn() bool {
	sf := s.cfg.SecondFactor
	return s.factors != nil && sf != nil && sf.Mode != SecondFactorOff && sf.Keys != nil
}

// challenge sends the browser to the challenge when res's user has a
// second factor (or must enrol one), and reports whether it did. A
// passkey that verified its user is two factors already.
func (s *Service) challenge(w http.ResponseWriter, r *http.Request, res Result, target string) (bool, error) {
	if !s.secondFactorOn() || slices.Contains(res.AMR, AMRMFA) {
		return false, nil
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	f, err := s.factors.Factors(ctx, res.User.ID)
	if err != nil {
		return false, err
	}
	if res.Provider == ProviderPasskey && f.TOTP == nil {
		// A passkey that did not verify its user: only the app's code
		// would be a factor of another kind.
		return false, nil
	}
	if f.Any() && s.trustedDevice(ctx, r, res.User.ID) {
		s.logger.Info("second factor skipped: the browser is remembered", zap.String("user_id", res.User.ID))
		return false, nil
	}
	enrol := false
	if !f.Any() {
		sf := s.cfg.SecondFactor
		if sf == nil || sf.Mode != SecondFactorRequired || res.User.Anonymous {
			return false, nil
		}
		enrol = true
	}
	p := pendingSignIn{
		ID: randomToken(), UserID: res.User.ID, Provider: res.Provider, AMR: res.AMR, Target: target,
		UpgradedGuest: res.UpgradedGuest, ReplacedUserID: res.ReplacedUserID, MaxTTL: res.MaxTTL, Enrol: enrol,
		Expires: s.now().Add(ChallengeTTL).UnixMilli(),
	}
	raw, _ := json.Marshal(p)
	http.SetCookie(w, &http.Cookie{
		Name: s.challengeCookie(r), Value: s.Seal(challengePurpose, raw), Path: "/", MaxAge: int(ChallengeTTL / time.Second),
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode,
	})
	s.logger.Info("sign-in needs a second factor", zap.String("provider", res.Provider), zap.String("user_id", res.User.ID), zap.Bool("enrol", enrol))
	Redirect(w, r, PathChallenge)
	return true, nil
}

// pending opens the browser's challenge cookie.
func (s *Service) pending(r *http.Request) (pendingSignIn, bool) {
	var p pendingSignIn
	c, err := r.Cookie(s.challengeCookie(r))
	if err != nil {
		return p, false
	}
	raw, err := s.Open(r, challengePurpose, c.Value)
	if err != nil || json.Unmarshal(raw, &p) != nil || s.now().UnixMilli() >= p.Expires || p.UserID == "" {
		return pendingSignIn{}, false
	}
	return p, true
}

func (s *Service) clearChallenge(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: s.challengeCookie(r), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode})
}

// serveChallenge routes the challenge's paths; it reports whether path
// was one of them.
func (s *Service) serveChallenge(w http.ResponseWriter, r *http.Request, path string) bool {
	if !s.secondFactorOn() {
		return false
	}
	switch path {
	case PathChallenge:
		if r.Method == http.MethodPost {
			s.report(r, http.MethodPost, "second_factor", s.serveChallengeCode(w, r))
		} else {
			s.serveChallengePage(w, r)
		}
	case pathChallengeEnrol:
		s.report(r, http.MethodPost, "second_factor", s.serveChallengeEnrol(w, r))
	case pathChallengePasskeyOptions:
		s.serveChallengePasskeyOptions(w, r)
	case pathChallengePasskey:
		s.report(r, http.MethodPost, "second_factor", s.serveChallengePasskey(w, r))
	default:
		return false
	}
	return true
}

// ChallengeData is what the challenge page's template gets.
type ChallengeData struct {
	Site string
	// Mode is "challenge" or "enrol" (second_factor required, no factor
	// yet), or "codes" (the backup codes of a new enrolment, once).
	Mode             string
	Error, ErrorCode string
	TOTP, Passkey    bool
	BackupCodes      int
	Action           string
	PasskeyAction    string
	PasskeyOptions   string
	Script           string
	SignInURL        string
	// RememberDays offers "Remember this browser" for that many days
	// (remember_device); 0: not offered.
	RememberDays int
	// Setup is the authenticator app being set up (enrol); Codes and
	// ContinueURL once it is.
	Setup       *TOTPSetup
	Codes       []string
	ContinueURL string
}

var challengeMessages = map[string]string{
	"code":              "That code is not right, or was used already. Enter the code your app shows now, or a backup code.",
	"challenge_expired": "This sign-in expired or was started in another browser. Please sign in again.",
	"challenge_dead":    "Too many wrong codes: sign in again to get a new try.",
	"passkey":           "That passkey did not work. Try again, or use a code.",
	"unavailable":       "Sign-in isn't available right now. Please try again in a moment.",
	"rate_limited":      "Too many attempts came from your network. Please wait a minute and try again.",
}

func (s *Service) renderChallenge(w http.ResponseWriter, r *http.Request, status int, d ChallengeData) {
	d.Site = s.Site()
	if msg, ok := challengeMessages[d.ErrorCode]; ok {
		d.Error = msg
	}
	if d.Script != "" {
		s.WriteScriptPage(w, r, status, challengeTemplate, d, "second factor")
		return
	}
	s.WritePage(w, r, status, challengeTemplate, d, "second factor")
}

// failChallenge answers a challenge's post that failed with code: a form
// posted from the page goes back to the challenge, which shows the error
// (post/redirect/get, FailForm); a script's post gets the page itself,
// with status.
func (s *Service) failChallenge(w http.ResponseWriter, r *http.Request, status int, code string, p pendingSignIn) {
	s.FailForm(w, r, code, FormBack{Path: PathChallenge}, func() {
		d, err := s.challengeData(r, p, code)
		if err != nil {
			s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
			return
		}
		s.renderChallenge(w, r, status, d)
	})
}

// challengeGone answers a request whose challenge is missing, expired or
// over: back to the sign-in page.
func (s *Service) challengeGone(w http.ResponseWriter, r *http.Request, code string) {
	s.clearChallenge(w, r)
	s.fail(w, r, code, "")
}

// serveChallengePage shows the challenge: a code field (app or backup
// code) and, with passkeys, the passkey button; or, for a user who must
// enrol, the authenticator app's enrolment.
func (s *Service) serveChallengePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.Render(w, r, http.StatusMethodNotAllowed, s.Page(r, "signin", "method"))
		return
	}
	p, ok := s.pending(r)
	if !ok {
		s.challengeGone(w, r, "challenge_expired")
		return
	}
	d, err := s.challengeData(r, p, r.URL.Query().Get("error"))
	if err != nil {
		s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
		return
	}
	s.renderChallenge(w, r, http.StatusOK, d)
}

func (s *Service) challengeData(r *http.Request, p pendingSignIn, code string) (ChallengeData, error) {
	d := ChallengeData{Mode: "challenge", ErrorCode: code, Action: PathChallenge, SignInURL: PathSignIn}
	if p.Enrol {
		return s.enrolData(r, p, code, "")
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	f, err := s.factors.Factors(ctx, p.UserID)
	if err != nil {
		return d, err
	}
	d.TOTP, d.BackupCodes = f.TOTP != nil && s.TOTPOn(), f.BackupCodes
	if s.rememberDeviceOn() {
		d.RememberDays = int((s.cfg.SecondFactor.RememberDevice + 24*time.Hour - 1) / (24 * time.Hour))
	}
	if s.rp != nil && len(f.Passkeys) > 0 && p.Provider != ProviderPasskey {
		d.Passkey, d.Script = true, passkey.ScriptPath
		d.PasskeyAction, d.PasskeyOptions = pathChallengePasskey, pathChallengePasskeyOptions
	}
	return d, nil
}

// enrolData is the enrolment page of p's user: a new secret, or secret
// again after a wrong first code.
func (s *Service) enrolData(r *http.Request, p pendingSignIn, code, secret string) (ChallengeData, error) {
	d := ChallengeData{Mode: "enrol", ErrorCode: code, SignInURL: PathSignIn}
	if s.TOTPOn() {
		ctx, cancel := storeCtx(r)
		defer cancel()
		user, err := s.cfg.Users.GetUser(ctx, p.UserID)
		if err != nil {
			return d, err
		}
		setup, err := s.NewTOTPSetup(user, secret, "challenge:"+p.ID, pathChallengeEnrol)
		if err != nil {
			return d, err
		}
		d.TOTP, d.Setup = true, &setup
	}
	if s.rp != nil {
		d.Passkey, d.Script = true, passkey.ScriptPath
		d.PasskeyAction, d.PasskeyOptions = pathChallengePasskey, pathChallengePasskeyOptions
	}
	return d, nil
}

// readChallenge checks a challenge form (same-origin POST, the second
// factor limit) and opens its pending sign-in.
func (s *Service) readChallenge(w http.ResponseWriter, r *http.Request) (pendingSignIn, bool) {
	if !s.ReadForm(w, r) {
		return pendingSignIn{}, false
	}
	p, ok := s.pending(r)
	if !ok {
		s.challengeGone(w, r, "challenge_expired")
		return p, false
	}
	if s.Limited(w, r, LimitSecondFactor, "", func(status int, code string) { s.failChallenge(w, r, status, code, p) }) {
		return p, false
	}
	return p, true
}

// countAttempt counts one try at p's challenge and reports whether it may
// go on: MaxCodeAttempts tries end it, right or wrong.
func (s *Service) countAttempt(ctx context.Context, p pendingSignIn) (bool, error) {
	return s.cfg.Users.RateHit(ctx, "second_factor_attempt:"+p.ID, secondfactor.MaxCodeAttempts, ChallengeTTL)
}

// serveChallengeCode checks a code from the app or a backup code.
func (s *Service) serveChallengeCode(w http.ResponseWriter, r *http.Request) bool {
	p, ok := s.readChallenge(w, r)
	if !ok {
		return false
	}
	if p.Enrol {
		Redirect(w, r, PathChallenge)
		return false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	more, err := s.countAttempt(ctx, p)
	if err != nil {
		s.failChallenge(w, r, http.StatusServiceUnavailable, "unavailable", p)
		return false
	}
	if !more {
		s.logger.Info("second factor refused: the challenge had its tries", zap.String("user_id", p.UserID))
		s.challengeGone(w, r, "challenge_dead")
		return false
	}
	kind, err := s.CheckCode(ctx, p.UserID, r.PostForm.Get("code"))
	if errors.Is(err, ErrWrongCode) {
		s.logger.Info("second factor refused: wrong code", zap.String("user_id", p.UserID))
		s.failChallenge(w, r, http.StatusUnauthorized, "code", p)
		return false
	}
	if err != nil {
		s.failChallenge(w, r, http.StatusServiceUnavailable, "unavailable", p)
		return false
	}
	s.logger.Info("second factor passed", zap.String("user_id", p.UserID), zap.String("with", kind))
	return s.passChallenge(w, r, p, []string{AMROTP}, r.PostForm.Get("remember") != "")
}

// passChallenge starts the pending sign-in's session: its first factor's
// methods, the second's, and mfa.
func (s *Service) passChallenge(w http.ResponseWriter, r *http.Request, p pendingSignIn, second []string, remember bool) bool {
	s.clearChallenge(w, r)
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := s.cfg.Users.GetUser(ctx, p.UserID)
	if err != nil {
		if errors.Is(err, session.ErrNotFound) {
			s.fail(w, r, "challenge_expired", "")
			return false
		}
		s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
		return false
	}
	res := p.result(user, second...)
	res.TrustDevice = remember
	return s.startSession(w, r, res, p.Target)
}

// result is the sign-in p was, for user, once its second factor passed
// by second's methods.
func (p pendingSignIn) result(user *session.User, second ...string) Result {
	return Result{User: user, Provider: p.Provider, AMR: combineAMR(FirstFactorAMR(p.Provider, p.AMR), second...),
		UpgradedGuest: p.UpgradedGuest, ReplacedUserID: p.ReplacedUserID, MaxTTL: p.MaxTTL}
}

// serveChallengePasskeyOptions starts a passkey ceremony for the pending
// user: an assertion by one of its passkeys, or, enrolling, a new one.
func (s *Service) serveChallengePasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if s.rp == nil || !s.ReadOptionsRequest(w, r) {
		if s.rp == nil {
			http.NotFound(w, r)
		}
		return
	}
	p, ok := s.pending(r)
	if !ok {
		OptionsAnswer(w, http.StatusUnauthorized, nil, "challenge_expired", challengeMessages["challenge_expired"])
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	f, err := s.factors.Factors(ctx, p.UserID)
	if err != nil {
		OptionsAnswer(w, http.StatusServiceUnavailable, nil, "unavailable", challengeMessages["unavailable"])
		return
	}
	var opts []byte
	var c passkey.Ceremony
	if p.Enrol {
		user, uerr := s.cfg.Users.GetUser(ctx, p.UserID)
		if uerr != nil {
			OptionsAnswer(w, http.StatusServiceUnavailable, nil, "unavailable", challengeMessages["unavailable"])
			return
		}
		account := accountLabel(user)
		opts, c, err = s.rp.BeginRegistration(user.ID, account, account, "Passkey", f.Passkeys)
	} else {
		opts, c, err = s.rp.BeginFactor(p.UserID, f.Passkeys)
	}
	if err != nil {
		OptionsAnswer(w, http.StatusConflict, nil, "passkey", challengeMessages["passkey"])
		return
	}
	s.KeepCeremony(w, r, c)
	OptionsAnswer(w, http.StatusOK, opts, "", "")
}

// serveChallengePasskey checks the passkey's answer: the second factor,
// or (enrolling) the new passkey, which then is.
func (s *Service) serveChallengePasskey(w http.ResponseWriter, r *http.Request) bool {
	if s.rp == nil {
		http.NotFound(w, r)
		return false
	}
	p, ok := s.readChallenge(w, r)
	if !ok {
		return false
	}
	c, ok := s.TakeCeremony(w, r)
	if !ok || c.UserID != p.UserID {
		s.failChallenge(w, r, http.StatusBadRequest, "passkey", p)
		return false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	f, err := s.factors.Factors(ctx, p.UserID)
	if err != nil {
		s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
		return false
	}
	answer := []byte(r.PostForm.Get("credential"))
	if p.Enrol && c.Kind == passkey.KindRegister {
		key, err := s.rp.FinishRegistration(c, p.UserID, "", "", f.Passkeys, answer, s.now())
		if err == nil {
			err = s.factors.AddPasskey(ctx, p.UserID, key)
		}
		if err != nil {
			s.logger.Info("passkey enrolment refused", zap.String("user_id", p.UserID), zap.Error(err))
			s.failChallenge(w, r, http.StatusBadRequest, "passkey", p)
			return false
		}
		s.logger.Info("passkey enrolled at sign-in", zap.String("user_id", p.UserID))
		return s.passChallenge(w, r, p, []string{passkeyKindAMR(key.BackupEligible)}, false)
	}
	a, err := s.rp.FinishFactor(c, p.UserID, f.Passkeys, answer, s.now())
	if err == nil {
		err = s.factors.UsePasskey(ctx, p.UserID, a.Passkey.ID, a.SignCount, a.BackupState, s.now())
	}
	if err != nil {
		s.logger.Info("second factor refused: the passkey", zap.String("user_id", p.UserID), zap.Error(err))
		s.failChallenge(w, r, http.StatusBadRequest, "passkey", p)
		return false
	}
	s.logger.Info("second factor passed", zap.String("user_id", p.UserID), zap.String("with", "passkey"))
	amr := passkeyAMR(a)
	return s.passChallenge(w, r, p, amr[:1], r.PostForm.Get("remember") != "")
}

// serveChallengeEnrol turns on the authenticator app of a user who must
// have a second factor, then starts the session and shows the backup
// codes once.
func (s *Service) serveChallengeEnrol(w http.ResponseWriter, r *http.Request) bool {
	p, ok := s.readChallenge(w, r)
	if !ok {
		return false
	}
	if !p.Enrol || !s.TOTPOn() {
		Redirect(w, r, PathChallenge)
		return false
	}
	secret, ok := s.PendingSecret(r, "challenge:"+p.ID)
	if !ok {
		Redirect(w, r, PathChallenge)
		return false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	codes, err := s.EnrolTOTP(ctx, p.UserID, secret, r.PostForm.Get("code"))
	if errors.Is(err, ErrFirstCode) {
		d, derr := s.enrolData(r, p, "code", secret)
		if derr != nil {
			s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
			return false
		}
		s.renderChallenge(w, r, http.StatusBadRequest, d)
		return false
	}
	if err != nil {
		s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
		return false
	}
	s.logger.Info("authenticator app enrolled at sign-in", zap.String("user_id", p.UserID))
	s.clearChallenge(w, r)
	user, err := s.cfg.Users.GetUser(ctx, p.UserID)
	if err != nil {
		s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
		return false
	}
	return s.startSessionThen(w, r, p.result(user, AMROTP), func() {
		s.renderChallenge(w, r, http.StatusOK, ChallengeData{Mode: "codes", Codes: codes, ContinueURL: s.cfg.Redirects.Resolve(p.Target)})
	})
}

//go:embed templates/challenge.html
var challengeTemplateText string

var challengeTemplate = template.Must(NewPageTemplate("challenge").Parse(challengeTemplateText))
