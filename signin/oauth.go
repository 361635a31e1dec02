package signin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/convex-auth/caddy-convex-auth/internal/cookies"
	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// sealedFlow is what the flow cookie holds, sealed: the browser keeps the
// flow, so an anonymous start writes nothing to the store.
type sealedFlow struct {
	Provider   string `json:"p"`
	State      string `json:"s"`
	Verifier   string `json:"v"`
	Nonce      string `json:"n"`
	RedirectTo string `json:"r"`
	Expires    int64  `json:"x"` // Unix ms
	// LinkUser and LinkSession, set when the flow links the account to
	// the signed-in user (BeginLink): the callback hands it to the Linker,
	// which binds it only for that same session. RedirectTo is then the
	// page that began it, where a failed flow returns.
	LinkUser    string `json:"lu,omitempty"`
	LinkSession string `json:"ls,omitempty"`
	// ReauthBegan, set when the flow re-authenticates LinkSession
	// (BeginReauth): when it began, Unix seconds.
	ReauthBegan int64 `json:"rb,omitempty"`
	// Guest is the guest the starting browser was signed in as: only that
	// guest may sign up in place with the flow.
	Guest string `json:"g,omitempty"`
}

// flowPurpose binds a sealed value to its use, so no other sealed value
// of this key ring passes for a flow.
const flowPurpose = "convex_auth oauth flow v1"

// flowCookie holds the sealed flow and binds it to the browser that
// started it: a callback opened in another browser (login CSRF) fails.
func (s *Service) flowCookie(r *http.Request) string {
	return cookies.Name(cookies.Flow, httprule.SecureRequest(r), s.cookieSuffix)
}

func (s *Service) redirectURI(p *oauthMethod) string {
	if u := p.info.RedirectURL; u != "" {
		return u
	}
	return s.cfg.Origin + callbackPrefix + p.info.Name
}

// serveOAuthStart seals the flow's state, PKCE verifier, nonce and
// redirectTo into a cookie, which binds it to the browser, and sends the
// browser to the provider. It writes nothing to the store.
func (s *Service) serveOAuthStart(w http.ResponseWriter, r *http.Request, p *oauthMethod) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.Render(w, r, http.StatusMethodNotAllowed, s.Page(r, "signin", "method"))
		return
	}
	if s.Limited(w, r, LimitOAuthStart, "", func(status int, code string) { s.Render(w, r, status, s.Page(r, "signin", code)) }) {
		return
	}
	target := s.cfg.Redirects.Resolve(r.URL.Query().Get("redirectTo"))
	authURL, err := s.beginFlow(w, r, p, sealedFlow{RedirectTo: target, Guest: s.guestSessionUser(r)})
	if err != nil {
		s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "provider_unavailable"))
		return
	}
	http.Redirect(w, r, authURL, http.StatusFound)
}

// BeginLink starts the flow of the provider named name to link its account
// to sess's user, and returns the provider URL to send the browser to. The
// callback hands the account to the Linker (HandleLinks); a failed flow
// returns to back with ?error=<code>.
func (s *Service) BeginLink(w http.ResponseWriter, r *http.Request, name string, sess *session.Session, back string) (string, error) {
	p := s.oauth[name]
	if p == nil {
		return "", fmt.Errorf("no provider is named %q", name)
	}
	return s.beginFlow(w, r, p, sealedFlow{RedirectTo: back, LinkUser: sess.UserID, LinkSession: sess.ID})
}

// HandleLinks makes l finish the flows BeginLink starts. It is set once,
// before the service serves.
func (s *Service) HandleLinks(l Linker) { s.linker = l }

// beginFlow fills rec with a new flow for p, seals it into the flow cookie
// and returns the provider URL to send the browser to.
func (s *Service) beginFlow(w http.ResponseWriter, r *http.Request, p *oauthMethod, rec sealedFlow) (string, error) {
	f := provider.Flow{State: randomToken(), Verifier: oauth2.GenerateVerifier(), Nonce: randomToken(), RedirectURI: s.redirectURI(p), ForceLogin: rec.ReauthBegan != 0}
	ctx, cancel := context.WithTimeout(r.Context(), providerCallTimeout)
	defer cancel()
	authURL, err := p.AuthCodeURL(ctx, f)
	if err != nil {
		s.logger.Warn("sign-in provider unreachable", zap.String("provider", p.info.Name), zap.Error(err))
		return "", err
	}
	rec.Provider, rec.State, rec.Verifier, rec.Nonce = p.info.Name, f.State, f.Verifier, f.Nonce
	rec.Expires = s.now().Add(DefaultFlowTTL).UnixMilli()
	sealed := s.flowKeys.Seal(marshal(rec), s.flowAAD)
	http.SetCookie(w, &http.Cookie{
		Name: s.flowCookie(r), Value: sealed, Path: "/", MaxAge: int(DefaultFlowTTL / time.Second),
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	return authURL, nil
}

// serveOAuthCallback opens the browser's flow cookie, checks the state
// against it and clears it, then exchanges the code (single use at the
// provider) and signs the user in.
func (s *Service) serveOAuthCallback(w http.ResponseWriter, r *http.Request, p *oauthMethod) (signedIn bool) {
	if r.Method == http.MethodPost && p.info.FormPost {
		s.relayFormPost(w, r, p)
		return false
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.Render(w, r, http.StatusMethodNotAllowed, s.Page(r, "signin", "method"))
		return false
	}
	name := p.info.Name
	q := r.URL.Query()
	if p.info.FormPost && q.Get("state") == "" && q.Get("error") == "" {
		if posted := s.takeFormPost(w, r, p); posted != nil {
			q = posted
		}
	}
	state := q.Get("state")
	cookie, _ := r.Cookie(s.flowCookie(r))
	http.SetCookie(w, &http.Cookie{Name: s.flowCookie(r), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode})
	var rec sealedFlow
	if state == "" || cookie == nil || !s.openFlow(r, cookie.Value, &rec) || !constantTimeEqual(rec.State, state) {
		s.logger.Info("sign-in refused: the state does not match this browser's", zap.String("provider", name))
		s.fail(w, r, "state", "")
		return false
	}
	fail := func(code, redirectTo string) {
		if rec.ReauthBegan != 0 {
			Redirect(w, r, PathReauth+"?"+url.Values{"error": {code}, "redirectTo": {rec.RedirectTo}}.Encode())
			return
		}
		if rec.LinkUser != "" {
			Redirect(w, r, rec.RedirectTo+"?error="+code)
			return
		}
		s.fail(w, r, code, redirectTo)
	}
	if s.now().UnixMilli() >= rec.Expires {
		s.logger.Info("sign-in refused: the flow expired", zap.String("provider", name))
		fail("state", "")
		return false
	}
	if rec.Provider != name {
		s.logger.Info("sign-in refused: the state belongs to another provider", zap.String("provider", name))
		fail("state", "")
		return false
	}
	if e := q.Get("error"); e != "" {
		code := "provider"
		if e == "access_denied" {
			code = "denied"
		}
		s.logger.Info("sign-in ended by the provider", zap.String("provider", name), zap.String("error", truncate(e, 64)))
		fail(code, rec.RedirectTo)
		return false
	}
	code := q.Get("code")
	if code == "" {
		fail("provider", rec.RedirectTo)
		return false
	}
	pctx, pcancel := context.WithTimeout(r.Context(), providerCallTimeout)
	defer pcancel()
	id, err := p.Identity(pctx, provider.Flow{State: state, Verifier: rec.Verifier, Nonce: rec.Nonce, RedirectURI: s.redirectURI(p)}, provider.Callback{Code: code, Params: q})
	if err == nil {
		err = admitEmail(p.info, id)
	}
	if refusal := provider.AsRefusal(err); refusal != nil {
		s.logger.Info("sign-in refused by an admission rule", zap.String("provider", name), zap.String("rule", refusal.Rule), zap.String("detail", refusal.Detail))
		fail(refusedCode(refusal.Rule), rec.RedirectTo)
		return false
	}
	if err != nil {
		s.logger.Warn("sign-in refused: the provider's answer did not check out", zap.String("provider", name), zap.Error(err))
		fail("provider", rec.RedirectTo)
		return false
	}
	if rec.ReauthBegan != 0 {
		if s.reauther == nil {
			fail("state", "")
			return false
		}
		link := Link{Provider: p.info, UserID: rec.LinkUser, SessionID: rec.LinkSession, Identity: id}
		return s.reauther.FinishReauth(w, r, Reauth{Link: link, Began: time.Unix(rec.ReauthBegan, 0), RedirectTo: rec.RedirectTo})
	}
	if rec.LinkUser != "" {
		if s.linker == nil {
			fail("state", "")
			return false
		}
		return s.linker.FinishLink(w, r, Link{Provider: p.info, UserID: rec.LinkUser, SessionID: rec.LinkSession, Identity: id})
	}
	// The flow cookie proves the flow started in this browser.
	user, err := s.resolveAs(r.Context(), name, id, s.adoptingGuest(r.Context(), r, true, rec.Guest))
	if err != nil {
		s.logger.Warn("sign-in could not find or create the user", zap.String("provider", name), zap.Error(err))
		s.Render(w, r, http.StatusServiceUnavailable, s.Page(r, "signin", "unavailable"))
		return false
	}
	return s.finish(w, r, user, name, rec.RedirectTo)
}

// openFlow opens a sealed flow cookie into rec.
func (s *Service) openFlow(r *http.Request, sealed string, rec *sealedFlow) bool {
	raw, err := s.flowKeys.Open(r.Context(), sealed, s.flowAAD)
	return err == nil && json.Unmarshal(raw, rec) == nil
}
