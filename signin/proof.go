package signin

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// proveAddress records that user just proved control of email (a reset or
// verification link used in its browser, or with its code). The first
// proof of the user's address ends whatever was set up before it: every
// sign-in method but keep (the one the proof was for) is removed, every
// browser forgotten and, unless the caller just did (a reset), every
// session ended (for reason), so that whoever signed up with someone
// else's address keeps nothing once its owner takes it back (account
// pre-hijacking). It returns what changed, to announce;
// nothing when the address was proved before or is no longer the user's.
func (s *Service) proveAddress(ctx context.Context, user *session.User, email string, keep session.Account, endSessions bool, reason string) ([]session.UserChange, error) {
	if user.Profile.Email != email || user.Profile.EmailVerified {
		return nil, nil
	}
	users := s.cfg.Users
	user.Profile.EmailVerified = true
	if err := users.UpdateUser(ctx, user); err != nil {
		return nil, fmt.Errorf("marking the email verified: %w", err)
	}
	changes := []session.UserChange{{Kind: session.ChangeEmailVerified}}
	accounts, err := users.AccountsOf(ctx, user.ID)
	if err != nil {
		return changes, fmt.Errorf("reading the sign-in methods set up before the proof: %w", err)
	}
	for _, a := range accounts {
		if a.Provider == keep.Provider && a.ProviderAccountID == keep.ProviderAccountID {
			continue
		}
		if err := users.DeleteAccount(ctx, a.Provider, a.ProviderAccountID); err != nil && !errors.Is(err, session.ErrNotFound) {
			return changes, fmt.Errorf("removing a sign-in method set up before the proof: %w", err)
		}
		s.logger.Info("a sign-in method set up before the address was proved is removed", zap.String("user_id", user.ID), zap.String("provider", a.Provider))
		changes = append(changes, session.UserChange{Kind: session.ChangeMethodRemoved, Provider: a.Provider})
	}
	s.ForgetDevices(ctx, nil, nil, user.ID)
	if endSessions {
		if _, err := s.cfg.Sessions.DeleteUser(session.WithRevokeReason(ctx, reason), user.ID, ""); err != nil {
			return changes, fmt.Errorf("ending the sessions from before the proof: %w", err)
		}
	}
	s.logger.Info("the address is proved for the first time: earlier methods, browsers and sessions are gone",
		zap.String("user_id", user.ID), zap.Int("methods_removed", len(changes)-1))
	return changes, nil
}
