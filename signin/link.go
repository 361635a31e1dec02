package signin

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// linkPrefix starts linking a provider's account to the signed-in user:
// POST /auth/link/<provider>, from the account page.
const linkPrefix = "/auth/link/"

// serveLinkStart begins the provider's OAuth flow for the signed-in
// session. It is a same-origin POST, so no other site can start a flow
// that would link its own provider account to this user.
func (s *Service) serveLinkStart(w http.ResponseWriter, r *http.Request, name string) {
	p := s.oauth[name]
	if p == nil {
		s.accountError(w, r, http.StatusNotFound, "unknown_provider")
		return
	}
	if !s.accountForm(w, r) {
		return
	}
	sess, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	if s.limited(w, r, LimitOAuthStart, "", func(status int, code string) { s.accountError(w, r, status, code) }) {
		return
	}
	authURL, err := s.beginFlow(w, r, p, sealedFlow{RedirectTo: PathAccount, LinkUser: sess.UserID, LinkSession: sess.ID})
	if err != nil {
		s.accountError(w, r, http.StatusServiceUnavailable, "provider_unavailable")
		return
	}
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// finishLink binds the provider account that came back to the user whose
// session started the flow, if that session is still this browser's.
// An account bound to anyone else is refused; nothing changes then.
func (s *Service) finishLink(w http.ResponseWriter, r *http.Request, p *oauthMethod, rec sealedFlow, id provider.Identity) bool {
	name := p.info.Name
	back := func(kind, code string) { s.redirect(w, r, PathAccount+"?"+kind+"="+code) }
	sess, err := s.cfg.Host.Session(r)
	if err != nil {
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	if sess == nil || sess.ID != rec.LinkSession || sess.UserID != rec.LinkUser {
		s.logger.Info("account link refused: the flow was started by another session", zap.String("provider", name))
		back("error", "link_session")
		return false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	users := s.cfg.Users
	acct, err := users.GetAccount(ctx, name, id.Subject)
	switch {
	case err == nil && acct.UserID == sess.UserID:
		back("notice", "already_linked")
		return true
	case err == nil:
		s.logger.Info("account link refused: the provider account belongs to another user", zap.String("provider", name), zap.String("user_id", sess.UserID))
		back("error", "account_in_use")
		return false
	case !errors.Is(err, session.ErrNotFound):
		s.logger.Warn("account link could not reach the store", zap.Error(err))
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	user, err := users.GetUser(ctx, sess.UserID)
	if errors.Is(err, session.ErrNotFound) {
		back("error", "app_managed") // the app signed this user in
		return false
	}
	if err != nil {
		s.logger.Warn("account link could not read the user", zap.Error(err))
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	id = clipIdentity(id)
	id.Email = session.NormalizeEmail(id.Email)
	newAcct := session.Account{Provider: name, ProviderAccountID: id.Subject, UserID: user.ID}
	if user.Anonymous {
		_, err = s.adoptGuest(ctx, user, newAcct, id)
	} else if err = users.CreateAccount(ctx, newAcct); err == nil && fillProfile(&user.Profile, id) {
		// Gaps only; a failure here leaves the link made.
		if uerr := users.UpdateUser(ctx, user); uerr != nil {
			s.logger.Warn("account link could not update the profile", zap.Error(uerr))
		}
	}
	if errors.Is(err, session.ErrAccountExists) {
		back("error", "account_in_use")
		return false
	}
	if err != nil {
		s.logger.Warn("account link could not bind the account", zap.Error(err))
		s.accountError(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	s.logger.Info("account linked", zap.String("provider", name), zap.String("user_id", user.ID))
	back("notice", "linked")
	return true
}
