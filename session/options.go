package session

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Options.
const (
	DefaultSessionTTL    = 720 * time.Hour
	DefaultIdleTTL       = 168 * time.Hour
	DefaultTouchInterval = time.Minute
	// DefaultMaxSessionsPerUser bounds one user's sessions: enough for
	// every browser and device a person uses.
	DefaultMaxSessionsPerUser = 50
	// MaxMaxSessionsPerUser keeps one user's index, read whole by "sign
	// out everywhere", small.
	MaxMaxSessionsPerUser = 10000
)

// Options are the expiry rules every store applies.
type Options struct {
	SessionTTL    time.Duration    // absolute lifetime; default DefaultSessionTTL
	IdleTTL       time.Duration    // sliding: ends after this long unused; default DefaultIdleTTL
	TouchInterval time.Duration    // last use is written at most this often; default DefaultTouchInterval
	Now           func() time.Time // clock; default time.Now (tests inject one)
	// Realm is the user base the store serves (realm.go): it writes its tag
	// into every record and finds no record of another realm. Default: "",
	// a realm like any other; the gateway always names one.
	Realm string
	// MaxSessionsPerUser is how many live sessions one user may have; a
	// new one past it ends the least recently used. Default:
	// DefaultMaxSessionsPerUser.
	MaxSessionsPerUser int
}

// Validate reports options that cannot work. Zero values mean the defaults.
func (o Options) Validate() error {
	if o.SessionTTL < 0 || o.IdleTTL < 0 || o.TouchInterval < 0 {
		return errors.New("session: session_ttl, idle_ttl and touch interval must not be negative")
	}
	n := o.filled()
	if n.SessionTTL < time.Millisecond || n.IdleTTL < time.Millisecond || n.TouchInterval < time.Millisecond {
		return errors.New("session: session_ttl, idle_ttl and touch interval must be at least 1ms")
	}
	if n.TouchInterval >= n.IdleTTL {
		return errors.New("session: the touch interval must be shorter than idle_ttl, or sessions in use would idle out; raise idle_ttl")
	}
	if o.MaxSessionsPerUser < 0 || o.MaxSessionsPerUser > MaxMaxSessionsPerUser {
		return fmt.Errorf("session: max_sessions_per_user %d is out of range: use 1 to %d (default %d)", o.MaxSessionsPerUser, MaxMaxSessionsPerUser, DefaultMaxSessionsPerUser)
	}
	return nil
}

// withDefaults fills zero fields. Invalid values are replaced too, so a store
// built without calling Validate still behaves sanely.
func (o Options) withDefaults() Options {
	o = o.filled()
	if o.TouchInterval >= o.IdleTTL {
		o.TouchInterval = o.IdleTTL / 2
	}
	return o
}

// filled replaces zero (and negative) fields by the defaults.
func (o Options) filled() Options {
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.IdleTTL <= 0 {
		o.IdleTTL = DefaultIdleTTL
	}
	if o.TouchInterval <= 0 {
		o.TouchInterval = DefaultTouchInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSessionsPerUser <= 0 || o.MaxSessionsPerUser > MaxMaxSessionsPerUser {
		o.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	return o
}

// now returns the clock truncated to milliseconds, the precision stores keep,
// so that a session returned by Create equals the one a lookup returns.
func (o Options) now() time.Time {
	return time.UnixMilli(o.Now().UnixMilli()).UTC()
}

// needsTouch reports whether a lookup at now must write last use.
func (o Options) needsTouch(s *Session, now time.Time) bool {
	return now.Sub(s.LastUsedAt) >= o.TouchInterval
}

// redisTTL is how long the backend should keep s after now: until the
// earlier of its absolute and idle expiry.
func (o Options) redisTTL(s *Session, now time.Time) time.Duration {
	end := s.LastUsedAt.Add(o.IdleTTL)
	if s.ExpiresAt.Before(end) {
		end = s.ExpiresAt
	}
	return end.Sub(now)
}
