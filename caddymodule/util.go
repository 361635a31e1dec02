package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError answers with {"error": code, "message": message}.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	if status == http.StatusUnauthorized || status == http.StatusServiceUnavailable || status == http.StatusForbidden {
		w.Header().Set("Cache-Control", "no-store")
	}
	writeJSON(w, status, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, message})
}

// rateLimitedLog logs a recurring failure at most once per interval, so an
// outage does not flood the log.
type rateLimitedLog struct {
	logger   *zap.Logger
	interval time.Duration
	last     atomic.Int64 // unix nanoseconds of the last line
	skipped  atomic.Int64
}

func newRateLimitedLog(logger *zap.Logger, interval time.Duration) *rateLimitedLog {
	return &rateLimitedLog{logger: logger, interval: interval}
}

func (l *rateLimitedLog) warn(msg string, err error) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(l.interval) || !l.last.CompareAndSwap(last, now) {
		l.skipped.Add(1)
		return
	}
	l.logger.Warn(msg, zap.Error(err), zap.Int64("similar_since_last", l.skipped.Swap(0)))
}

// isLocalPath is a path on this site: one leading slash, not //host or /\host.
func isLocalPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, `/\`)
}

func isAbsoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
