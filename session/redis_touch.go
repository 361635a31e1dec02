package session

import (
	"context"
	"sync"
	"time"
)

// maxPendingTouches bounds the last-use writes waiting for the background
// writer. When it is full a touch is dropped: the session's cached last use
// stays old, so its next lookup queues the write again.
const maxPendingTouches = 4096

// touchQueue is the set of sessions whose last use is due to be written,
// coalesced by session ID and drained by one goroutine (touchLoop).
type touchQueue struct {
	mu      sync.Mutex
	pending map[string]touchRequest
	wake    chan struct{} // capacity 1: a drain is due
	// unsettled counts queued and in-flight touches, for tests that must
	// see the writes done (settled).
	unsettled int
}

type touchRequest struct {
	p   parsedToken
	now time.Time // the lookup that found the touch due; written as last use
}

func newTouchQueue() *touchQueue {
	return &touchQueue{pending: make(map[string]touchRequest), wake: make(chan struct{}, 1)}
}

// add queues a touch without blocking. It reports false when the queue is
// full and the session is not already in it.
func (q *touchQueue) add(p parsedToken, now time.Time) bool {
	q.mu.Lock()
	prev, ok := q.pending[p.sessionID]
	if !ok && len(q.pending) >= maxPendingTouches {
		q.mu.Unlock()
		return false
	}
	if !ok {
		q.unsettled++
	}
	if !ok || now.After(prev.now) {
		q.pending[p.sessionID] = touchRequest{p: p, now: now}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take empties the queue.
func (q *touchQueue) take() map[string]touchRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	batch := q.pending
	q.pending = make(map[string]touchRequest, len(batch))
	return batch
}

// done marks one taken touch finished.
func (q *touchQueue) done() {
	q.mu.Lock()
	q.unsettled--
	q.mu.Unlock()
}

// settled reports whether every queued touch has been written (or given up).
func (q *touchQueue) settled() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unsettled == 0
}

// touchLoop writes queued last uses until ctx ends (Close). Each write is
// the lookup script run at the lookup's time: it writes last use if it is
// still due (another instance may have written it since), and its answer
// refreshes the cached entry, or removes it if the session is gone.
func (s *RedisStore) touchLoop(ctx context.Context) {
	defer close(s.touchDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.touches.wake:
		}
		for _, req := range s.touches.take() {
			if ctx.Err() != nil {
				return
			}
			s.touchNow(ctx, req)
			s.touches.done()
		}
	}
}

func (s *RedisStore) touchNow(ctx context.Context, req touchRequest) {
	ctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
	defer cancel()
	epoch := s.cache.currentEpoch()
	readAt := s.opts.now()
	sess, err := s.lookupRedis(ctx, req.p, req.now)
	if err == nil && s.live.Load() {
		s.cache.put(sess, readAt, epoch)
		return
	}
	// Gone from Redis without a revocation message (expired, evicted, lost
	// in a failover): stop serving it now rather than at the cache TTL. Not
	// written (Redis failed): the next lookup goes to Redis and writes it.
	s.cache.remove(req.p.sessionID)
}
