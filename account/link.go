package account

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// serveLinkStart begins the provider's OAuth flow for the signed-in
// session: POST /auth/link/<provider>. It is a same-origin POST, so no
// other site can start a flow that would link its own provider account to
// this user; it needs a recent authentication (reauthenticated), and a
// verified email unless the user is a guest (signin.VerifyFirst).
func (p *Pages) serveLinkStart(w http.ResponseWriter, r *http.Request, name string) {
	if _, ok := p.signIn.Provider(name); !ok {
		p.fail(w, r, http.StatusNotFound, "unknown_provider")
		return
	}
	sess, ok := p.readForm(w, r)
	if !ok {
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, accounts, ok := p.userAndAccounts(ctx, w, r, sess, "account")
	if !ok {
		return
	}
	if signin.VerifyFirst(user) {
		p.fail(w, r, http.StatusForbidden, "verify_first")
		return
	}
	if !p.reauthenticated(ctx, w, r, sess, user, accounts, "reauth_methods", "account") {
		return
	}
	if p.signIn.Limited(w, r, signin.LimitOAuthStart, "", func(status int, code string) { p.fail(w, r, status, code) }) {
		return
	}
	authURL, err := p.signIn.BeginLink(w, r, name, sess, signin.PathAccount)
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "provider_unavailable")
		return
	}
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// FinishLink binds the provider account that came back to the user whose
// session started the flow, if that session is still this browser's.
// An account bound to anyone else is refused; nothing changes then.
func (p *Pages) FinishLink(w http.ResponseWriter, r *http.Request, l signin.Link) bool {
	name := l.Provider.Name
	sess, err := p.cfg.Host.Session(r)
	if err != nil {
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	if sess == nil || sess.ID != l.SessionID || sess.UserID != l.UserID {
		p.logger.Info("account link refused: the flow was started by another session", zap.String("provider", name))
		back(w, r, "error", "link_session")
		return false
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	err = p.signIn.LinkAccount(ctx, sess.UserID, name, l.Identity)
	switch {
	case errors.Is(err, signin.ErrAlreadyLinked):
		back(w, r, "notice", "already_linked")
		return true
	case errors.Is(err, signin.ErrVerifyFirst):
		p.logger.Info("account link refused: the user's email is not verified", zap.String("provider", name), zap.String("user_id", sess.UserID))
		back(w, r, "error", "verify_first")
		return false
	case errors.Is(err, signin.ErrAccountInUse):
		p.logger.Info("account link refused: the provider account belongs to another user", zap.String("provider", name), zap.String("user_id", sess.UserID))
		back(w, r, "error", "account_in_use")
		return false
	case errors.Is(err, session.ErrNotFound):
		back(w, r, "error", "app_managed") // the app signed this user in
		return false
	case err != nil:
		p.logger.Warn("account link could not reach the store", zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return false
	}
	p.logger.Info("account linked", zap.String("provider", name), zap.String("user_id", sess.UserID))
	p.changed(ctx, sess.UserID, session.UserChange{Kind: session.ChangeMethodAdded, Provider: name})
	back(w, r, "notice", "linked")
	return true
}

// serveUnlink removes one linked method (fields provider, account), never
// the last one; it needs a recent authentication, as linking does.
func (p *Pages) serveUnlink(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.readForm(w, r)
	if !ok {
		return
	}
	provider, accountID := r.PostForm.Get("provider"), r.PostForm.Get("account")
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, accounts, ok := p.userAndAccounts(ctx, w, r, sess, "account")
	if !ok || !p.reauthenticated(ctx, w, r, sess, user, accounts, "reauth_methods", "account") {
		return
	}
	found := false
	for _, a := range accounts {
		found = found || (a.Provider == provider && a.ProviderAccountID == accountID)
	}
	switch {
	case !found:
		p.fail(w, r, http.StatusNotFound, "not_linked")
		return
	case len(accounts) < 2:
		p.fail(w, r, http.StatusConflict, "last_method")
		return
	}
	if err := p.cfg.Users.DeleteAccount(ctx, provider, accountID); err != nil && !errors.Is(err, session.ErrNotFound) {
		p.logger.Warn("unlink could not reach the store", zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("account unlinked", zap.String("provider", provider), zap.String("user_id", sess.UserID))
	p.changed(ctx, sess.UserID, session.UserChange{Kind: session.ChangeMethodRemoved, Provider: provider})
	back(w, r, "notice", "unlinked")
}

// changed tells the user and the app what changed (signin.AccountChanged);
// a user that cannot be read is logged, the change stands.
func (p *Pages) changed(ctx context.Context, userID string, changes ...session.UserChange) {
	user, err := p.cfg.Users.GetUser(ctx, userID)
	if err != nil {
		p.logger.Warn("a change of sign-in methods could not be announced: the user could not be read", zap.String("user_id", userID), zap.Error(err))
		return
	}
	p.signIn.AccountChanged(ctx, user, changes...)
}
