package account

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/passkey"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// Second factors on the account page: passkeys (named, listed with their
// last use, added and removed) and an authenticator app (TOTP: enrolment
// with a QR code, turning it off with a code), and backup codes shown
// once. Every change needs a recent sign-in, as deleting the account
// does.

//go:embed templates/factors.html
var factorsTemplateText string

//go:embed templates/totp.html
var totpTemplateText string

var totpTemplate = template.Must(signin.NewPageTemplate("totp").Parse(totpTemplateText))

func init() {
	template.Must(pageTemplate.Parse(factorsTemplateText))
}

// Paths of the second-factor forms, under /auth/account/.
const (
	pathPasskeys       = accountPrefix + "passkeys"
	pathPasskeyOptions = accountPrefix + "passkeys/options"
	pathRemovePasskey  = accountPrefix + "passkeys/remove"
	pathTOTP           = accountPrefix + "totp"
	pathDisableTOTP    = accountPrefix + "totp/disable"
	pathBackupCodes    = accountPrefix + "backup-codes"
)

// FactorsData is the account page's second-factor section.
type FactorsData struct {
	// Any: the user has a second factor; Recent: the session signed in
	// recently enough to change them.
	Any, Recent   bool
	ReauthURL     string
	ReauthMinutes int
	// PasskeysOn and TOTPOn say which kinds the site offers.
	PasskeysOn, TOTPOn bool
	Passkeys           []PasskeyRow
	TOTP               bool
	TOTPSince          string
	BackupCodes        int
	// Form actions.
	AddPasskeyAction, PasskeyOptions, RemovePasskeyAction string
	EnrolTOTPURL, DisableTOTPAction, BackupCodesAction    string
}

// PasskeyRow is one passkey of the list.
type PasskeyRow struct {
	ID, Name, Created, LastUsed string
	Synced                      bool
}

// totpPage is what the enrolment and backup-code pages get.
type totpPage struct {
	Site, Mode, Error, Notice string
	Setup                     signin.TOTPSetup
	AccountURL                string
	Codes                     []string
}

// factorsOn reports whether the site offers any second factor.
func (p *Pages) factorsOn() (passkeys, totp bool) {
	sf := p.cfg.SecondFactor
	passkeys = p.signIn.Passkeys() != nil && (sf == nil || sf.Mode != signin.SecondFactorOff)
	return passkeys, p.signIn.TOTPOn()
}

// recent reports whether sess authenticated recently enough to change
// how the user signs in: the same rule as linking, unlinking and
// deleting (Session.Recent, the session's auth_time).
func (p *Pages) recent(sess *session.Session) bool {
	return sess.Recent(p.cfg.Now(), ReauthWindow)
}

// fillFactors fills the page's second-factor section for sess's user.
func (p *Pages) fillFactors(r *http.Request, sess *session.Session, user *session.User, d *PageData) error {
	passkeysOn, totpOn := p.factorsOn()
	if !passkeysOn && !totpOn || user.Anonymous || d.AppManaged {
		return nil
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	f, err := p.signIn.Factors().Factors(ctx, user.ID)
	if err != nil {
		return err
	}
	now := p.cfg.Now()
	fd := &FactorsData{
		Any: f.Any(), Recent: p.recent(sess), PasskeysOn: passkeysOn, TOTPOn: totpOn,
		ReauthURL:     signin.SignInURL(signin.PathAccount+"#factors", url.Values{"reauth": {"1"}}),
		ReauthMinutes: int(ReauthWindow / time.Minute),
		TOTP:          f.TOTP != nil, BackupCodes: f.BackupCodes,
		AddPasskeyAction: pathPasskeys, PasskeyOptions: pathPasskeyOptions, RemovePasskeyAction: pathRemovePasskey,
		EnrolTOTPURL: pathTOTP, DisableTOTPAction: pathDisableTOTP, BackupCodesAction: pathBackupCodes,
	}
	if f.TOTP != nil {
		fd.TOTPSince = f.TOTP.CreatedAt.UTC().Format("Jan 2, 2006")
	}
	for _, k := range f.Passkeys {
		row := PasskeyRow{ID: k.ID, Name: k.Name, Created: k.CreatedAt.UTC().Format("Jan 2, 2006"), Synced: k.BackupEligible}
		if !k.LastUsedAt.IsZero() {
			row.LastUsed = agoWords(now.Sub(k.LastUsedAt))
		}
		fd.Passkeys = append(fd.Passkeys, row)
	}
	d.Factors = fd
	d.ReauthCode = f.TOTP != nil || f.BackupCodes > 0
	d.ReauthPasskeyOnly = f.Any() && !d.ReauthCode
	if passkeysOn && fd.Recent {
		d.Script = passkey.ScriptPath
	}
	return nil
}

// serveFactors serves the second-factor forms; it reports whether sub
// was one of them.
func (p *Pages) serveFactors(w http.ResponseWriter, r *http.Request, path string) bool {
	passkeysOn, totpOn := p.factorsOn()
	switch {
	case path == pathPasskeyOptions && passkeysOn:
		p.servePasskeyOptions(w, r)
	case path == pathPasskeys && passkeysOn:
		p.serveAddPasskey(w, r)
	case path == pathRemovePasskey && passkeysOn:
		p.serveRemovePasskey(w, r)
	case path == pathTOTP && totpOn:
		p.serveTOTP(w, r)
	case path == pathDisableTOTP && totpOn:
		p.serveDisableTOTP(w, r)
	case path == pathBackupCodes && (passkeysOn || totpOn):
		p.serveBackupCodes(w, r)
	default:
		return false
	}
	return true
}

// changeAllowed checks that sess's user may change its second factors:
// a user of this site (not a guest, not the app's), signed in recently.
func (p *Pages) changeAllowed(w http.ResponseWriter, r *http.Request, sess *session.Session) (*session.User, bool) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	switch {
	case errors.Is(err, session.ErrNotFound):
		p.fail(w, r, http.StatusForbidden, "app_managed")
		return nil, false
	case err != nil:
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return nil, false
	case user.Anonymous:
		p.fail(w, r, http.StatusForbidden, "factor_guest")
		return nil, false
	case !p.recent(sess):
		p.fail(w, r, http.StatusForbidden, "factor_reauth")
		return nil, false
	}
	return user, true
}

// limited counts a second-factor step against the per-client limit.
func (p *Pages) limited(w http.ResponseWriter, r *http.Request) bool {
	return p.signIn.Limited(w, r, signin.LimitSecondFactor, "", func(status int, code string) { p.fail(w, r, status, code) })
}

// servePasskeyOptions starts adding a passkey (passkey.js asks).
func (p *Pages) servePasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if !p.signIn.ReadOptionsRequest(w, r) {
		return
	}
	sess, err := p.cfg.Host.Session(r)
	if err != nil || sess == nil {
		signin.OptionsAnswer(w, http.StatusUnauthorized, nil, "signed_out", "Sign in again, then add the passkey.")
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	if err != nil || user.Anonymous || !p.recent(sess) {
		signin.OptionsAnswer(w, http.StatusForbidden, nil, "factor_reauth", errorMessages["factor_reauth"])
		return
	}
	f, err := p.signIn.Factors().Factors(ctx, user.ID)
	if err != nil {
		signin.OptionsAnswer(w, http.StatusServiceUnavailable, nil, "unavailable", errorMessages["unavailable"])
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if len(name) > session.MaxPasskeyNameBytes {
		name = name[:session.MaxPasskeyNameBytes]
	}
	account := user.Profile.Email
	if account == "" {
		account = user.ID
	}
	display := user.Profile.Name
	if display == "" {
		display = account
	}
	opts, c, err := p.signIn.Passkeys().BeginRegistration(user.ID, account, display, name, f.Passkeys)
	if err != nil {
		p.logger.Error("adding a passkey could not start", zap.Error(err))
		signin.OptionsAnswer(w, http.StatusInternalServerError, nil, "unavailable", errorMessages["unavailable"])
		return
	}
	p.signIn.KeepCeremony(w, r, c)
	signin.OptionsAnswer(w, http.StatusOK, opts, "", "")
}

// serveAddPasskey checks the browser's new passkey and keeps it.
func (p *Pages) serveAddPasskey(w http.ResponseWriter, r *http.Request) {
	_, user, ok := p.factorForm(w, r)
	if !ok {
		return
	}
	c, ok := p.signIn.TakeCeremony(w, r)
	if !ok || c.Kind != passkey.KindRegister {
		p.fail(w, r, http.StatusBadRequest, "passkey_expired")
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	f, err := p.signIn.Factors().Factors(ctx, user.ID)
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	account := user.Profile.Email
	key, err := p.signIn.Passkeys().FinishRegistration(c, user.ID, account, account, f.Passkeys, []byte(r.PostForm.Get("credential")), p.cfg.Now())
	if err != nil {
		p.logger.Info("adding a passkey refused", zap.String("user_id", user.ID), zap.Error(err))
		p.fail(w, r, http.StatusBadRequest, "passkey")
		return
	}
	if err := p.signIn.Factors().AddPasskey(ctx, user.ID, key); err != nil {
		code := "unavailable"
		switch {
		case errors.Is(err, session.ErrAccountExists):
			code = "passkey_exists"
		case errors.Is(err, session.ErrInvalidUser):
			code = "too_many_passkeys"
		}
		p.fail(w, r, http.StatusConflict, code)
		return
	}
	p.logger.Info("passkey added", zap.String("user_id", user.ID), zap.Bool("synced", key.BackupEligible))
	p.factorsChanged(r, user.ID, session.UserChange{Kind: session.ChangeFactorAdded, Provider: signin.ProviderPasskey})
	back(w, r, "notice", "passkey_added")
}

// serveRemovePasskey removes one of the user's passkeys.
func (p *Pages) serveRemovePasskey(w http.ResponseWriter, r *http.Request) {
	_, user, ok := p.factorForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	err := p.signIn.Factors().RemovePasskey(ctx, user.ID, r.PostForm.Get("id"))
	if errors.Is(err, session.ErrNotFound) {
		p.fail(w, r, http.StatusNotFound, "no_passkey")
		return
	}
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("passkey removed", zap.String("user_id", user.ID))
	p.afterFactorRemoved(w, r, user.ID)
	p.factorsChanged(r, user.ID, session.UserChange{Kind: session.ChangeFactorRemoved, Provider: signin.ProviderPasskey})
	back(w, r, "notice", "passkey_removed")
}

// serveTOTP shows a new secret to enrol (GET) or confirms it with a first
// code (POST), then shows the backup codes.
func (p *Pages) serveTOTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		sess, ok := p.session(w, r)
		if !ok {
			return
		}
		user, ok := p.changeAllowed(w, r, sess)
		if ok {
			p.writeEnrolment(w, r, http.StatusOK, user, sess, "", "")
		}
		return
	}
	sess, user, ok := p.factorForm(w, r)
	if !ok {
		return
	}
	secret, ok := p.signIn.PendingSecret(r, enrolmentBind(sess))
	if !ok {
		p.fail(w, r, http.StatusBadRequest, "totp_expired")
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	codes, err := p.signIn.EnrolTOTP(ctx, user.ID, secret, r.PostForm.Get("code"))
	if errors.Is(err, signin.ErrFirstCode) {
		p.writeEnrolment(w, r, http.StatusBadRequest, user, sess, secret, "That code is not right. Check the time on your device and enter the code the app shows now.")
		return
	}
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("authenticator app turned on", zap.String("user_id", user.ID))
	p.factorsChanged(r, user.ID, session.UserChange{Kind: session.ChangeFactorAdded, Provider: signin.FactorTOTP})
	p.writeCodes(w, r, codes, "Your authenticator app is on. Sign-ins now ask for its code.")
}

// enrolmentBind ties a pending secret to the session that asked for it.
func enrolmentBind(sess *session.Session) string { return "session:" + sess.UserID + ":" + sess.ID }

// writeEnrolment renders the enrolment page: a new secret, or secret
// again after a wrong first code.
func (p *Pages) writeEnrolment(w http.ResponseWriter, r *http.Request, status int, user *session.User, sess *session.Session, secret, errMsg string) {
	setup, err := p.signIn.NewTOTPSetup(user, secret, enrolmentBind(sess), pathTOTP)
	if err != nil {
		p.logger.Error("an authenticator app's setup could not be made", zap.Error(err))
		p.fail(w, r, http.StatusInternalServerError, "unavailable")
		return
	}
	d := totpPage{Site: p.signIn.Site(), Mode: "enrol", Error: errMsg, Setup: setup, AccountURL: signin.PathAccount + "#factors"}
	p.signIn.WritePage(w, r, status, totpTemplate, d, "authenticator app")
}

// writeCodes shows new backup codes, once.
func (p *Pages) writeCodes(w http.ResponseWriter, r *http.Request, codes []string, notice string) {
	d := totpPage{Site: p.signIn.Site(), Mode: "codes", Notice: notice, Codes: codes, AccountURL: signin.PathAccount + "#factors"}
	p.signIn.WritePage(w, r, http.StatusOK, totpTemplate, d, "backup codes")
}

// factorForm reads a second-factor form (same-origin POST, the
// second_factor limit) of a user who may change its factors.
func (p *Pages) factorForm(w http.ResponseWriter, r *http.Request) (*session.Session, *session.User, bool) {
	sess, ok := p.readForm(w, r)
	if !ok || p.limited(w, r) {
		return nil, nil, false
	}
	user, ok := p.changeAllowed(w, r, sess)
	return sess, user, ok
}

// serveBackupCodes makes new backup codes for a user with a factor.
func (p *Pages) serveBackupCodes(w http.ResponseWriter, r *http.Request) {
	_, user, ok := p.factorForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	f, err := p.signIn.Factors().Factors(ctx, user.ID)
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	if !f.Any() {
		p.fail(w, r, http.StatusConflict, "no_factor")
		return
	}
	codes, err := p.signIn.NewBackupCodes(ctx, user.ID)
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("backup codes replaced", zap.String("user_id", user.ID))
	p.factorsChanged(r, user.ID, session.UserChange{Kind: session.ChangeBackupCodes})
	p.writeCodes(w, r, codes, "Your new backup codes replace the old ones.")
}

// serveDisableTOTP turns the authenticator app off: a recent sign-in and
// a code from the app (or a backup code).
func (p *Pages) serveDisableTOTP(w http.ResponseWriter, r *http.Request) {
	sess, user, ok := p.factorForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	_, err := p.signIn.CheckSessionCode(ctx, sess, r.PostForm.Get("code"))
	switch {
	case errors.Is(err, signin.ErrWrongCode):
		p.fail(w, r, http.StatusForbidden, "totp_code")
		return
	case errors.Is(err, signin.ErrCodeTriesSpent):
		p.fail(w, r, http.StatusTooManyRequests, signin.ReauthCodesSpent)
		return
	case err != nil:
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	if err := p.signIn.Factors().RemoveTOTP(ctx, user.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("authenticator app turned off", zap.String("user_id", user.ID))
	p.afterFactorRemoved(w, r, user.ID)
	p.factorsChanged(r, user.ID, session.UserChange{Kind: session.ChangeFactorRemoved, Provider: signin.FactorTOTP})
	back(w, r, "notice", "totp_removed")
}

// afterFactorRemoved drops the backup codes of a user left without a
// factor, and forgets the user's browsers but this one: a browser
// remembered past the challenge (remember_device) is asked again.
func (p *Pages) afterFactorRemoved(w http.ResponseWriter, r *http.Request, userID string) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	if f, err := p.signIn.Factors().Factors(ctx, userID); err == nil && !f.Any() && f.BackupCodes > 0 {
		_ = p.signIn.Factors().SetBackupCodes(ctx, userID, nil)
	}
	p.signIn.ForgetDevices(ctx, w, r, userID)
}

// factorsChanged tells the user (a mail) and the app (user.updated) what
// changed of the user's second factors.
func (p *Pages) factorsChanged(r *http.Request, userID string, c session.UserChange) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	p.changed(ctx, userID, c)
}
