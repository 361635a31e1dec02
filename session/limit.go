package session

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"golang.org/x/time/rate"
)

// Rate is a rate limit: Events per Per, with bursts of up to Events.
type Rate struct {
	Events int
	Per    time.Duration
}

func (r Rate) validate() error {
	if r.Events < 1 || r.Per < time.Millisecond {
		return fmt.Errorf("%w: a rate limit needs at least 1 event per at least 1ms", ErrInvalidUser)
	}
	return nil
}

// Limiter is a store's rate limiter, shared by every instance of the store
// (Redis) or by the process (in-process store). Keys are the caller's; the
// store hashes them into its own key space, under its key prefix.
type Limiter interface {
	// Allow counts one event for key against r. When the event is over
	// the limit it is not counted, allowed is false and retryAfter says
	// when the next event would be allowed.
	Allow(ctx context.Context, key string, r Rate) (allowed bool, retryAfter time.Duration, err error)
}

var (
	_ Limiter = (*RedisStore)(nil)
	_ Limiter = (*MemoryStore)(nil)
)

// Allow implements Limiter with redis_rate's GCRA script, on Redis's clock.
// Its keys are "rate:<prefix>limit:<hash>" (redis_rate puts "rate:" first)
// and expire once the limit is back to full.
func (s *RedisStore) Allow(ctx context.Context, key string, r Rate) (bool, time.Duration, error) {
	if err := validateLimit(key, r); err != nil {
		return false, 0, err
	}
	res, err := s.limiter.Allow(ctx, s.prefix+"limit:"+hashKey("limit", s.realmTag, key), redis_rate.Limit{Rate: r.Events, Burst: r.Events, Period: r.Per})
	if err != nil {
		return false, 0, unavailable("rate limit", err)
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, max(res.RetryAfter, time.Millisecond), nil
}

// MaxMemoryLimiterKeys bounds the in-process limiter's memory: past it,
// limiters that are full again are dropped first, then arbitrary ones.
const MaxMemoryLimiterKeys = 100_000

// memoryLimits are the in-process store's limiters, one x/time/rate
// limiter per key, on the store's clock.
type memoryLimits struct {
	mu   sync.Mutex
	keys map[string]*limitEntry
}

type limitEntry struct {
	lim  *rate.Limiter
	rate Rate
}

// Allow implements Limiter.
func (m *MemoryStore) Allow(ctx context.Context, key string, r Rate) (bool, time.Duration, error) {
	if err := validateLimit(key, r); err != nil {
		return false, 0, err
	}
	if err := m.usersOpen("rate limit"); err != nil {
		return false, 0, err
	}
	return m.limits.allow(hashKey("limit", key), r, m.opts.now())
}

func (l *memoryLimits) allow(k string, r Rate, now time.Time) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = make(map[string]*limitEntry)
	}
	e, ok := l.keys[k]
	if !ok || e.rate != r {
		if len(l.keys) >= MaxMemoryLimiterKeys {
			l.evictLocked(now)
		}
		e = &limitEntry{lim: rate.NewLimiter(rate.Limit(float64(r.Events)/r.Per.Seconds()), r.Events), rate: r}
		l.keys[k] = e
	}
	res := e.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d, nil
	}
	return true, 0, nil
}

// evictLocked drops limiters that are full again (as good as new), and
// arbitrary ones if that is not enough, down to 90% of the bound.
func (l *memoryLimits) evictLocked(now time.Time) {
	for k, e := range l.keys {
		if e.lim.TokensAt(now) >= float64(e.rate.Events) {
			delete(l.keys, k)
		}
	}
	for k := range l.keys {
		if len(l.keys) < MaxMemoryLimiterKeys*9/10 {
			return
		}
		delete(l.keys, k)
	}
}

// sweep drops limiters that are full again.
func (l *memoryLimits) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.keys {
		if e.lim.TokensAt(now) >= float64(e.rate.Events) {
			delete(l.keys, k)
		}
	}
}

func validateLimit(key string, r Rate) error {
	if key == "" || len(key) > MaxRateKeyBytes {
		return fmt.Errorf("%w: a rate-limit key must be 1 to %d bytes", ErrInvalidUser, MaxRateKeyBytes)
	}
	if r.Events > math.MaxInt32 {
		return fmt.Errorf("%w: a rate limit allows at most %d events", ErrInvalidUser, math.MaxInt32)
	}
	return r.validate()
}
