package signin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// A provider that answers by form POST (Apple's response_mode=form_post)
// posts from its own site: the browser sends no SameSite=Lax cookie with
// that POST, so the flow cookie cannot be read there. The POST's
// parameters are sealed into a short-lived cookie of their own and the
// browser is sent (303) to a GET of the same callback, a top-level
// same-site navigation that carries both cookies; the flow is checked
// there, as for any provider. The code never appears in a URL.
const (
	formPostCookieName       = "convex_auth_callback"
	secureFormPostCookieName = "__Host-convex_auth_callback"
	formPostPurpose          = "convex_auth form_post callback v1"
	// formPostTTL is how long the relayed answer waits for the GET.
	formPostTTL = time.Minute
	// maxFormPostBytes bounds the relayed parameters (a cookie holds
	// about 4 KiB).
	maxFormPostBytes = 3 << 10
)

// sealedFormPost is what the relay cookie holds, sealed.
type sealedFormPost struct {
	Provider string `json:"p"`
	Params   string `json:"q"` // the POST's form, URL-encoded
	Expires  int64  `json:"x"` // Unix ms
}

func (s *Service) formPostCookie(r *http.Request) string {
	if httprule.SecureRequest(r) {
		return secureFormPostCookieName + s.cookieSuffix
	}
	return formPostCookieName + s.cookieSuffix
}

// relayFormPost answers the provider's POST: its parameters go into the
// relay cookie and the browser to a GET of the callback. It changes no
// state but that cookie; a forged POST is refused at the GET, where its
// state does not match the browser's flow.
func (s *Service) relayFormPost(w http.ResponseWriter, r *http.Request, p *oauthMethod) {
	r.Body = http.MaxBytesReader(w, r.Body, httprule.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.Render(w, r, http.StatusBadRequest, s.Page(r, "signin", "bad_form"))
		return
	}
	params := r.PostForm.Encode()
	if len(params) > maxFormPostBytes {
		s.logger.Info("sign-in refused: the provider's form post is too large", zap.String("provider", p.info.Name), zap.Int("bytes", len(params)))
		s.fail(w, r, "provider", "")
		return
	}
	rec := sealedFormPost{Provider: p.info.Name, Params: params, Expires: s.now().Add(formPostTTL).UnixMilli()}
	http.SetCookie(w, &http.Cookie{
		Name: s.formPostCookie(r), Value: s.flowKeys.Seal(marshal(rec), s.formPostAAD), Path: callbackPrefix + p.info.Name,
		MaxAge: int(formPostTTL / time.Second), HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode,
	})
	Redirect(w, r, callbackPrefix+p.info.Name)
}

// takeFormPost reads and clears the relay cookie of p: the parameters of
// the provider's POST, or nil.
func (s *Service) takeFormPost(w http.ResponseWriter, r *http.Request, p *oauthMethod) url.Values {
	c, err := r.Cookie(s.formPostCookie(r))
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: s.formPostCookie(r), Value: "", Path: callbackPrefix + p.info.Name, MaxAge: -1,
		HttpOnly: true, Secure: httprule.SecureRequest(r), SameSite: http.SameSiteLaxMode})
	raw, err := s.flowKeys.Open(r.Context(), c.Value, s.formPostAAD)
	var rec sealedFormPost
	if err != nil || json.Unmarshal(raw, &rec) != nil || rec.Provider != p.info.Name || s.now().UnixMilli() >= rec.Expires {
		return nil
	}
	params, err := url.ParseQuery(rec.Params)
	if err != nil {
		return nil
	}
	return params
}
