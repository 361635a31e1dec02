package signin

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// Password lockout, so that guesses cannot lock the owner out:
//
//   - Failed passwords count per (account, client): PasswordConfig's
//     MaxAttempts (10) per AttemptWindow (1 h). The client is the browser
//     when it has signed in to the account before (its device cookie),
//     else its address (an IPv6 address by its /64). A success forgets
//     that client's failures.
//   - Clients that never signed in to the account also share a
//     per-account ceiling: AccountCeiling failures per AttemptWindow are
//     free; each further one locks the account against such clients for a
//     delay that doubles from 1 s up to MaxLockDelay. A browser the account
//     knows is exempt from the ceiling, the lock and the site-wide limit.
//   - Site-wide, failed sign-ins count against limits { global_sign_in };
//     once it is spent, clients the account does not know wait until it
//     allows one again.

// Lockout figures.
const (
	// AccountCeiling is how many failed passwords per AttemptWindow an
	// account takes from clients that never signed in to it before the
	// growing lock starts.
	AccountCeiling = 100
	// MaxLockDelay caps the growing lock.
	MaxLockDelay = 15 * time.Minute
)

// Store keys of the lockout.
const (
	accountFailKey  = "password-account:"
	accountLockKey  = "password-lock:"
	accountLevelKey = "password-lock-level:"
	globalBusyKey   = "sign-in-busy"
)

// passwordAttempt is one password checked against an account.
type passwordAttempt struct {
	email string
	// known: the browser signed in to the account's user before.
	known bool
	// clientKey counts this client's failures for the account.
	clientKey string
}

// newPasswordAttempt describes a password check of email's account, acct
// (nil when there is none, which is checked all the same).
func (s *Service) newPasswordAttempt(ctx context.Context, r *http.Request, email string, acct *session.Account) passwordAttempt {
	a := passwordAttempt{email: email}
	if acct != nil {
		a.known = s.knownDevice(ctx, r, acct.UserID)
	}
	client := "ip:" + clientKey(s.clientIP(r))
	if a.known {
		sum := sha256.Sum256([]byte("convex-auth device\x00" + s.deviceToken(r)))
		client = "device:" + b64url(sum[:16])
	}
	a.clientKey = passwordRateKey + email + "\x00" + client
	return a
}

// admit counts the attempt against its client's limit and checks the
// account's lock and the site-wide one (unknown clients only). A refusal
// is the page's error code, with Retry-After set in h; "" admits.
func (s *Service) admit(ctx context.Context, h http.Header, a passwordAttempt) (string, error) {
	pc := s.cfg.Password
	allowed, err := s.cfg.Users.RateHit(ctx, a.clientKey, pc.MaxAttempts, pc.AttemptWindow)
	if err != nil {
		return "", err
	}
	if !allowed {
		s.logger.Info("password refused: too many failed attempts from this client for the account")
		return "too_many_attempts", nil
	}
	if a.known {
		return "", nil
	}
	for _, l := range []struct{ key, code, why string }{
		{accountLockKey + a.email, "account_locked", "the account is locked against new clients for a while"},
		{globalBusyKey, "busy_sign_in", "too many failed sign-ins on the site"},
	} {
		wait, err := s.lockedFor(ctx, l.key)
		if err != nil {
			return "", err
		}
		if wait > 0 {
			s.logger.Info("password refused: " + l.why)
			h.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			if l.key == globalBusyKey && s.cfg.OnLimited != nil {
				s.cfg.OnLimited(LimitGlobalSignIn)
			}
			return l.code, nil
		}
	}
	return "", nil
}

// failed records a wrong password: against the site-wide limit and, from
// a client the account does not know, against the account's ceiling,
// past which the lock grows. Best effort: failures are logged.
func (s *Service) failed(ctx context.Context, a passwordAttempt) {
	if ok, retry, err := s.limiter.Allow(ctx, LimitGlobalSignIn, s.cfg.Limits.GlobalSignIn); err == nil && !ok {
		s.lock(ctx, globalBusyKey, retry)
	} else if err != nil {
		s.logger.Warn("a failed sign-in could not be counted site-wide", zap.Error(err))
	}
	if a.known {
		return
	}
	pc := s.cfg.Password
	within, err := s.cfg.Users.RateHit(ctx, accountFailKey+a.email, AccountCeiling, pc.AttemptWindow)
	if err != nil {
		s.logger.Warn("a failed password could not be counted for the account", zap.Error(err))
		return
	}
	if within {
		return
	}
	// Past the ceiling: each failure doubles the lock, from 1 s.
	level := 0
	if raw, err := s.cfg.Users.PeekOnce(ctx, accountLevelKey+a.email); err == nil && len(raw) == 8 {
		level = int(binary.BigEndian.Uint64(raw))
	}
	delay := MaxLockDelay
	if level < 20 {
		delay = min(time.Duration(1<<level)*time.Second, MaxLockDelay)
	}
	var next [8]byte
	binary.BigEndian.PutUint64(next[:], uint64(min(level+1, 64)))
	if err := s.cfg.Users.PutOnce(ctx, accountLevelKey+a.email, next[:], pc.AttemptWindow); err != nil {
		s.logger.Warn("the account's lock could not grow", zap.Error(err))
	}
	s.lock(ctx, accountLockKey+a.email, delay)
	s.logger.Info("the account is locked against new clients after too many failed passwords", zap.Duration("for", delay))
}

// succeeded forgets the client's failures for the account.
func (s *Service) succeeded(ctx context.Context, a passwordAttempt) {
	_ = s.cfg.Users.RateReset(ctx, a.clientKey)
}

// forgetLockout ends the account's lock and failures (a reset: the owner
// proved control of the address).
func (s *Service) forgetLockout(ctx context.Context, email string) {
	_ = s.cfg.Users.RateReset(ctx, accountFailKey+email)
	for _, k := range []string{accountLockKey + email, accountLevelKey + email} {
		if _, err := s.cfg.Users.TakeOnce(ctx, k); err != nil && !errors.Is(err, session.ErrNotFound) {
			s.logger.Warn("an account's lock could not be lifted", zap.Error(err))
		}
	}
}

// lock marks key locked for d; the mark holds its end.
func (s *Service) lock(ctx context.Context, key string, d time.Duration) {
	d = max(d, time.Millisecond)
	var until [8]byte
	binary.BigEndian.PutUint64(until[:], uint64(s.now().Add(d).UnixMilli()))
	if err := s.cfg.Users.PutOnce(ctx, key, until[:], d); err != nil {
		s.logger.Warn("a sign-in lock could not be stored", zap.Error(err))
	}
}

// lockedFor is how long key stays locked; 0 when it is not.
func (s *Service) lockedFor(ctx context.Context, key string) (time.Duration, error) {
	raw, err := s.cfg.Users.PeekOnce(ctx, key)
	if errors.Is(err, session.ErrNotFound) {
		return 0, nil
	}
	if err != nil || len(raw) != 8 {
		return 0, err
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(raw))).Sub(s.now()), nil
}
