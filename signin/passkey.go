package signin

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/passkey"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Passkeys: "Sign in with a passkey" (a discoverable credential names its
// user) and the ceremony cookie every passkey page shares. The page asks
// for a ceremony's options with a same-origin fetch (passkey.js), which
// seals the ceremony into a cookie of its own; the browser's answer comes
// back as a form post, which opens and clears it. Nothing is written to
// the store before the answer names a user.

// ProviderPasskey is the built-in passkey method's name.
const ProviderPasskey = "passkey"

// passkeyPurpose binds the ceremony cookie (cookies.Passkey), sealed by
// Seal.
const passkeyPurpose = "convex_auth passkey ceremony v1"

func (s *Service) passkeyCookie(r *http.Request) string {
	return cookies.Name(cookies.Passkey, httprule.SecureRequest(r), s.cookieSuffix)
}

// Passkeys is the relying party, nil when provider passkey is not set.
func (s *Service) Passkeys() *passkey.RP { return s.rp }

// Factors is the store of second factors.
func (s *Service) Factors() session.SecondFactors { return s.factors }

// KeepCeremony seals c into the ceremony cookie.
func (s *Service) KeepCeremony(w http.ResponseWriter, r *http.Request, c passkey.Ceremony) {
	raw, _ := json.Marshal(c)
	http.SetCookie(w, &http.Cookie{
		Name: s.passkeyCookie(r), Value: s.Seal(passkeyPurpose, raw), Path: "/", MaxAge: int(passkey.CeremonyTTL / time.Second),
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteStrictMode,
	})
}

// TakeCeremony opens and clears the ceremony cookie: each ceremony is
// answered once.
func (s *Service) TakeCeremony(w http.ResponseWriter, r *http.Request) (passkey.Ceremony, bool) {
	var c passkey.Ceremony
	cookie, err := r.Cookie(s.passkeyCookie(r))
	if err != nil {
		return c, false
	}
	http.SetCookie(w, &http.Cookie{Name: s.passkeyCookie(r), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: httprule.SecureRequest(r), SameSite: http.SameSiteStrictMode})
	raw, err := s.Open(r, passkeyPurpose, cookie.Value)
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Expired(s.now()) {
		return passkey.Ceremony{}, false
	}
	return c, true
}

// serveScript serves passkey.js.
func serveScript(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodGet {
		_, _ = w.Write(passkey.Script)
	}
}

// OptionsAnswer writes a ceremony's options, or a refusal, as the JSON
// passkey.js reads: the options, or {"error","message"} with a status.
func OptionsAnswer(w http.ResponseWriter, status int, options []byte, code, message string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if options == nil {
		options, _ = json.Marshal(map[string]string{"error": code, "message": message})
	}
	_, _ = w.Write(options)
}

// ReadOptionsRequest checks a request for a ceremony's options: a
// same-origin POST with a small form, counted against the second_factor
// limit. A refusal is answered in JSON.
func (s *Service) ReadOptionsRequest(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		OptionsAnswer(w, http.StatusMethodNotAllowed, nil, "method", "Use POST.")
		return false
	}
	if !s.cfg.Host.SameOrigin(r) {
		OptionsAnswer(w, http.StatusForbidden, nil, "cross_site", messages["cross_site"])
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, httprule.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		OptionsAnswer(w, http.StatusBadRequest, nil, "bad_form", messages["bad_form"])
		return false
	}
	return !s.Limited(w, r, LimitSecondFactor, "", func(status int, code string) {
		OptionsAnswer(w, status, nil, code, "Too many passkey or code attempts came from your network. Please wait a minute and try again.")
	})
}

// servePasskeyOptions starts a sign-in with a discoverable passkey.
func (s *Service) servePasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if !s.ReadOptionsRequest(w, r) {
		return
	}
	opts, c, err := s.rp.BeginSignIn(r.PostForm.Get("conditional") != "")
	if err != nil {
		s.logger.Error("passkey sign-in could not start", zap.Error(err))
		OptionsAnswer(w, http.StatusInternalServerError, nil, "unavailable", messages["unavailable"])
		return
	}
	s.KeepCeremony(w, r, c)
	OptionsAnswer(w, http.StatusOK, opts, "", "")
}

// servePasskeySignIn checks the browser's answer to a passkey sign-in and
// signs its user in.
func (s *Service) servePasskeySignIn(w http.ResponseWriter, r *http.Request) bool {
	if !s.ReadForm(w, r) {
		return false
	}
	target := r.PostForm.Get("redirectTo")
	if s.Limited(w, r, LimitSecondFactor, "", func(status int, code string) { s.failSignIn(w, r, status, code) }) {
		return false
	}
	c, ok := s.TakeCeremony(w, r)
	if !ok || c.Kind != passkey.KindSignIn {
		s.logger.Info("passkey sign-in refused: no ceremony of this browser's, or it expired")
		s.fail(w, r, "passkey_expired", target)
		return false
	}
	answer := []byte(r.PostForm.Get("credential"))
	ctx, cancel := storeCtx(r)
	defer cancel()
	a, err := s.rp.FinishSignIn(c, answer, func(userID string) ([]session.Passkey, error) {
		f, err := s.factors.Factors(ctx, userID)
		if err != nil {
			return nil, err
		}
		return f.Passkeys, nil
	}, s.now())
	if err != nil {
		if errors.Is(err, session.ErrUnavailable) {
			s.failSignIn(w, r, http.StatusServiceUnavailable, "unavailable")
			return false
		}
		s.logger.Info("passkey sign-in refused", zap.Error(err))
		s.fail(w, r, "passkey", target)
		return false
	}
	if err := s.factors.UsePasskey(ctx, a.UserID, a.Passkey.ID, a.SignCount, a.BackupState, s.now()); err != nil {
		if errors.Is(err, session.ErrSignCount) || errors.Is(err, session.ErrNotFound) {
			s.logger.Warn("passkey sign-in refused: the signature counter did not move (a cloned passkey, or a replay)", zap.String("user_id", a.UserID))
			s.fail(w, r, "passkey", target)
			return false
		}
		s.failSignIn(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	user, err := s.cfg.Users.GetUser(ctx, a.UserID)
	if err != nil {
		if errors.Is(err, session.ErrNotFound) {
			s.fail(w, r, "passkey", target)
			return false
		}
		s.failSignIn(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	return s.finishWith(w, r, user, ProviderPasskey, target, passkeyAMR(a))
}

// passkeyAMR is what an assertion says of how the user authenticated: a
// device-bound passkey is "hwk", a synced one (backup eligible) "swk"; a
// passkey whose authenticator verified its user (PIN, biometric) is two
// factors in one, possession and the user's, so it is also "mfa"; without
// verification only the user's presence was tested ("user").
func passkeyAMR(a passkey.Assertion) []string {
	key := passkeyKindAMR(a.BackupEligible)
	if a.UserVerified {
		return []string{key, AMRMFA}
	}
	return []string{key, AMRUser}
}

// passkeyKindAMR is a passkey's kind of key: "swk" when it may sync
// (backup eligible), else "hwk".
func passkeyKindAMR(backupEligible bool) string {
	if backupEligible {
		return AMRSoftwareKey
	}
	return AMRHardwareKey
}

// Seal seals a short-lived value the browser keeps (a pending enrolment)
// with the flow keys, bound to purpose and the realm.
func (s *Service) Seal(purpose string, plain []byte) string {
	return s.flowKeys.Seal(plain, []byte(purpose+"\x00"+s.cfg.Realm))
}

// Open opens a value Seal sealed for purpose.
func (s *Service) Open(r *http.Request, purpose, sealed string) ([]byte, error) {
	return s.flowKeys.Open(r.Context(), sealed, []byte(purpose+"\x00"+s.cfg.Realm))
}
