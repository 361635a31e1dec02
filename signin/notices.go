package signin

import (
	"context"
	"net/url"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Notices: what the user is told, by mail, and the app, by user.updated,
// when how the user signs in changes. Each is sent after the change and
// never fails it.

// AccountChanged announces changes of how user signs in: user.updated
// with the changes (when the store announces them, session.ChangeRecorder)
// and a mail to the user's address (when mail is set up), sent in the
// background.
func (s *Service) AccountChanged(ctx context.Context, user *session.User, changes ...session.UserChange) {
	if len(changes) == 0 {
		return
	}
	if rec, ok := s.cfg.Users.(session.ChangeRecorder); ok {
		rec.UserChanged(ctx, user.ID, changes...)
	}
	if user.Profile.Email == "" {
		return
	}
	d := s.noticeData(mail.AccountChanged, user.Profile.Email)
	for _, c := range changes {
		d.Changes = append(d.Changes, mail.Change{Kind: c.Kind, Method: s.methodLabel(c.Provider)})
	}
	s.sendNotice(ctx, d)
}

// noticeData is a notice of kind to email, with the site's links.
func (s *Service) noticeData(kind, email string) mail.Data {
	d := mail.Data{Kind: kind, SiteName: s.siteName, Site: s.Site(), Email: email,
		Link: s.cfg.Origin + PathSignIn, AccountLink: s.cfg.Origin + PathAccount, ResetLink: s.cfg.Origin + PathSignIn}
	if s.cfg.Password != nil {
		d.ResetLink = s.cfg.Origin + PathForgotPassword + "?" + url.Values{"email": {email}}.Encode()
	}
	return d
}

// sendNotice mails d in the background, if mail is set up; a failure is
// logged (never with the address).
func (s *Service) sendNotice(ctx context.Context, d mail.Data) {
	if s.cfg.Mail == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, resetMailTimeout)
		defer cancel()
		if err := s.deliver(ctx, d); err != nil {
			s.logger.Warn("a notice mail could not be sent", zap.String("kind", d.Kind), zap.Error(err))
		}
	}()
}

// methodLabel names a sign-in method for people.
func (s *Service) methodLabel(name string) string {
	switch name {
	case ProviderPassword:
		return "Password"
	case ProviderEmail:
		return "Email link"
	case ProviderAnonymous:
		return "Guest"
	case ProviderPasskey:
		return "A passkey"
	case FactorTOTP:
		return "The authenticator app"
	}
	if p := s.oauth[name]; p != nil {
		return p.info.Label
	}
	return name
}
