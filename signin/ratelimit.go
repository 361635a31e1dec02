package signin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// Limited counts r against the per-client limit name and, when global is
// not "", the global one (only once the client is within its own, so one
// client cannot drain it). When a limit refuses, it answers 429 with
// Retry-After through again and returns true; when the store fails, 503.
func (s *Service) Limited(w http.ResponseWriter, r *http.Request, name, global string, again func(status int, code string)) bool {
	ctx, cancel := storeCtx(r)
	defer cancel()
	checks := []struct{ name, key, code string }{{name, name + ":" + clientKey(s.clientIP(r)), "rate_limited"}}
	if global != "" {
		checks = append(checks, struct{ name, key, code string }{global, global, "busy"})
	}
	for _, c := range checks {
		ok, retry, err := s.limiter.Allow(ctx, c.key, *s.cfg.Limits.Rate(c.name))
		if err != nil {
			if errors.Is(err, session.ErrInvalidUser) {
				s.logger.Error("a sign-in rate limit is misconfigured", zap.String("limit", c.name), zap.Error(err))
			} else {
				s.logger.Warn("sign-in could not reach the rate limiter", zap.String("limit", c.name), zap.Error(err))
			}
			again(http.StatusServiceUnavailable, "unavailable")
			return true
		}
		if !ok {
			s.logger.Info("sign-in refused: rate limit", zap.String("limit", c.name))
			if s.cfg.OnLimited != nil {
				s.cfg.OnLimited(c.name)
			}
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
			again(http.StatusTooManyRequests, c.code)
			return true
		}
	}
	return false
}

// waitWords says a Retry-After in words: "1 minute", "12 minutes".
func waitWords(seconds string) string {
	n, err := strconv.Atoi(seconds)
	if err != nil || n < 1 {
		return "a moment"
	}
	switch {
	case n < 60:
		if n == 1 {
			return "1 second"
		}
		return fmt.Sprintf("%d seconds", n)
	case n < 3600:
		m := (n + 59) / 60
		if m == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", m)
	}
	h := (n + 3599) / 3600
	if h == 1 {
		return "1 hour"
	}
	return fmt.Sprintf("%d hours", h)
}

// rateLimit is a per-address limit on a sign-in step, counted in the store.
type rateLimit struct {
	flow   string // names the step in the log: "email sign-in"
	key    string // the store's counter
	max    int
	window time.Duration
	reason string // the log's reason for a refusal
	code   string // the page's error code for a refusal
}

// overLimit counts one hit of l. When the store fails or the count is over
// the limit, it logs why, answers through again and returns true.
func (s *Service) overLimit(ctx context.Context, l rateLimit, again func(status int, code string)) bool {
	allowed, err := s.cfg.Users.RateHit(ctx, l.key, l.max, l.window)
	if err != nil {
		s.logger.Warn(l.flow+" could not reach the store", zap.Error(err))
		again(http.StatusServiceUnavailable, "unavailable")
		return true
	}
	if !allowed {
		s.logger.Info(l.flow + " refused: " + l.reason)
		again(http.StatusTooManyRequests, l.code)
		return true
	}
	return false
}
