package signin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/secondfactor"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// ErrWrongCode means a code is neither the authenticator app's current
// one (or was used already) nor an unused backup code.
var ErrWrongCode = errors.New("signin: the code is not right")

// ErrCodeTriesSpent means a signed-in session has tried
// secondfactor.MaxCodeAttempts codes within ChallengeTTL (CheckSessionCode).
var ErrCodeTriesSpent = errors.New("signin: this session has tried too many codes")

// sessionCodeTriesKey counts a session's code tries outside a challenge.
const sessionCodeTriesKey = "second_factor_session_try:"

// FactorTOTP names the authenticator app among the second factors
// (session.UserChange's Provider).
const FactorTOTP = "totp"

// Kinds of code CheckCode accepts.
const (
	CodeTOTP   = "totp"
	CodeBackup = "backup_code"
)

// SiteName is the site's name as mails and authenticator apps show it.
func (s *Service) SiteName() string {
	if s.siteName != "" {
		return s.siteName
	}
	return s.Site()
}

// CheckSessionCode is CheckCode for a code typed in a signed-in session
// (a re-authentication, turning the app off). Like a challenge's, each try
// (but a blank one) counts before the comparison, so parallel guesses get
// secondfactor.MaxCodeAttempts in all per ChallengeTTL; after that it
// returns ErrCodeTriesSpent. A right code clears the count.
func (s *Service) CheckSessionCode(ctx context.Context, sess *session.Session, code string) (string, error) {
	if strings.TrimSpace(code) == "" {
		return "", ErrWrongCode // no guess: not a try
	}
	key := sessionCodeTriesKey + sess.ID
	more, err := s.cfg.Users.RateHit(ctx, key, secondfactor.MaxCodeAttempts, ChallengeTTL)
	if err != nil {
		return "", err
	}
	if !more {
		s.logger.Info("second factor refused: the session had its code tries", zap.String("user_id", sess.UserID))
		return "", ErrCodeTriesSpent
	}
	kind, err := s.CheckCode(ctx, sess.UserID, code)
	if err == nil {
		if err := s.cfg.Users.RateReset(ctx, key); err != nil {
			s.logger.Warn("a session's code tries could not be cleared", zap.Error(err))
		}
	}
	return kind, err
}

// CheckCode checks a code the user typed: the authenticator app's (RFC
// 6238, one step of skew, each step once and in order) or an unused
// backup code, which it spends. It returns which kind it was, or
// ErrWrongCode. A secret sealed under an older factor key is sealed again
// under the current one on the way.
func (s *Service) CheckCode(ctx context.Context, userID, code string) (string, error) {
	if s.factors == nil {
		return "", ErrWrongCode
	}
	if secondfactor.LooksLikeBackupCode(code) {
		hash, ok := secondfactor.HashBackupCode(userID, code)
		if !ok {
			return "", ErrWrongCode
		}
		used, err := s.factors.UseBackupCode(ctx, userID, hash)
		if err != nil {
			return "", err
		}
		if !used {
			return "", ErrWrongCode
		}
		s.logger.Info("a backup code was used", zap.String("user_id", userID))
		return CodeBackup, nil
	}
	sf := s.cfg.SecondFactor
	if sf == nil || sf.Keys == nil {
		return "", ErrWrongCode
	}
	f, err := s.factors.Factors(ctx, userID)
	if err != nil {
		return "", err
	}
	if f.TOTP == nil {
		return "", ErrWrongCode
	}
	secret, stale, err := sf.Keys.Open(ctx, userID, f.TOTP.Secret)
	if err != nil {
		s.logger.Error("a TOTP secret does not open", zap.String("user_id", userID), zap.Error(err))
		return "", fmt.Errorf("signin: %w", err)
	}
	if stale {
		if _, err := s.factors.SwapTOTPSecret(ctx, userID, f.TOTP.Secret, sf.Keys.Seal(userID, secret)); err != nil {
			s.logger.Warn("a TOTP secret could not be sealed under the current factor key", zap.String("user_id", userID), zap.Error(err))
		}
	}
	step, err := secondfactor.CheckCode(secret, code, s.now(), f.LastTOTPStep)
	if errors.Is(err, secondfactor.ErrReplayed) {
		s.logger.Info("a TOTP code was refused: used already", zap.String("user_id", userID))
		return "", ErrWrongCode
	}
	if err != nil {
		return "", ErrWrongCode
	}
	ok, err := s.factors.AcceptTOTPStep(ctx, userID, step)
	if err != nil {
		return "", err
	}
	if !ok {
		s.logger.Info("a TOTP code was refused: another request used it first", zap.String("user_id", userID))
		return "", ErrWrongCode
	}
	return CodeTOTP, nil
}
