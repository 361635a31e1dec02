package signin

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/secondfactor"
)

// ErrWrongCode means a code is neither the authenticator app's current
// one (or was used already) nor an unused backup code.
var ErrWrongCode = errors.New("signin: the code is not right")

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
