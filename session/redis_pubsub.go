package session

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The revocation listener. Missed messages cannot be replayed, so whenever
// the subscription is not known to be healthy the local cache is bypassed,
// and when it (re)connects the cache is flushed and OnRevokeAll hooks run.
const (
	// pubsubHealthInterval: after this long without traffic, ping.
	pubsubHealthInterval = time.Second
	// pubsubSilenceLimit: after this long without any reply, treat the
	// subscription as down.
	pubsubSilenceLimit = 3 * time.Second
	pubsubRetryMin     = 50 * time.Millisecond
	// pubsubRetryMax: resubscribing soon after a failover refills the
	// cache sooner (it is bypassed until then, so revocations hold anyway).
	pubsubRetryMax = 200 * time.Millisecond
)

func (s *RedisStore) listen(ctx context.Context) {
	defer close(s.listenDone)
	lastHeard := time.Now()
	retry := pubsubRetryMin
	for {
		msg, err := s.pubsub.ReceiveTimeout(ctx, pubsubHealthInterval)
		if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
			return
		}
		if err != nil {
			if isTimeout(err) {
				if time.Since(lastHeard) > pubsubSilenceLimit {
					s.setLive(false)
				}
				if err := s.pubsub.Ping(ctx); err != nil {
					s.setLive(false)
				}
				continue
			}
			s.setLive(false)
			// The subscription's node may be gone: the next attempt
			// should ask the slot's new master.
			s.reloadTopology()
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, pubsubRetryMax)
			continue
		}
		retry = pubsubRetryMin
		lastHeard = time.Now()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// A (re)subscription: whatever was published while we were
				// not subscribed is lost.
				s.live.Store(false)
				s.setLive(true)
			}
		case *redis.Message:
			s.setLive(true)
			s.applyRemoteRevocation(m.Payload)
		default: // *redis.Pong
			s.setLive(true)
		}
	}
}

// setLive records the subscription's health. Any change flushes the cache;
// coming back up also tells the OnRevokeAll hooks.
func (s *RedisStore) setLive(up bool) {
	if s.live.Swap(up) == up {
		return
	}
	if s.cache != nil {
		s.cache.flush()
	}
	if up {
		s.hooks.revokedAll()
	}
}

// applyRemoteRevocation handles "<origin> <sessionID>...". This store's own
// messages were applied when it sent them.
func (s *RedisStore) applyRemoteRevocation(payload string) {
	fields := strings.Fields(payload)
	if len(fields) < 2 || fields[0] == s.origin {
		return
	}
	ids := fields[1:]
	valid := ids[:0:0]
	for _, id := range ids {
		if validSessionID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return
	}
	if s.cache != nil {
		s.cache.drop(valid...)
	}
	s.hooks.revoked(valid...)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
