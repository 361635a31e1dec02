// Package ratelog logs a recurring failure at most once per interval, so an
// outage (an unreachable store, a failing key poll) does not flood the log.
package ratelog

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Log logs one recurring failure at most once per interval and counts
// the lines it held back.
type Log struct {
	logger   *zap.Logger
	interval time.Duration
	last     atomic.Int64 // unix nanoseconds of the last line
	skipped  atomic.Int64
}

// New logs through logger at most once per interval.
func New(logger *zap.Logger, interval time.Duration) *Log {
	return &Log{logger: logger, interval: interval}
}

// Warn logs msg and err unless a line was logged within the interval.
func (l *Log) Warn(msg string, err error) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(l.interval) || !l.last.CompareAndSwap(last, now) {
		l.skipped.Add(1)
		return
	}
	l.logger.Warn(msg, zap.Error(err), zap.Int64("similar_since_last", l.skipped.Swap(0)))
}
