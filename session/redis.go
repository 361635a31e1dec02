package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/convex-auth/caddy-convex-auth/internal/httprule"
)

// Redis layout (Cluster-safe: all of a user's keys share the hash tag
// {usertag}, see token.go, so every multi-key script runs on one slot):
//
//	<prefix>{<usertag>}:s:<sessionID>  string, the record (codec.go); its TTL
//	                                   is the earlier of absolute and idle
//	                                   expiry
//	<prefix>{<usertag>}:u              sorted set of the session IDs of the
//	                                   user (of every user with this tag:
//	                                   scripts and List check each record's
//	                                   user ID), scored by when each ends
//	                                   unused (Session.EndsAt, seconds to
//	                                   the millisecond), so
//	                                   that its lowest are the least
//	                                   recently used; at most
//	                                   Options.MaxSessionsPerUser
//	<prefix>revoke                     pub/sub channel: "<origin> <sessionID>..."
//
// The default prefix holds the realm's tag; records carry it as well, and
// every script and read checks it, so realms sharing a prefix stay apart.
//
// Neither keys nor values hold a cookie token; the session ID is a one-way
// hash of it.

// maxDeleteUserAttempts bounds retries when the user's index changes
// between reading it and the delete script (a concurrent sign-in).
const maxDeleteUserAttempts = 5

// RedisStore keeps sessions in Redis (standalone, Sentinel or Cluster) with
// an optional local lookup cache that revocations clear over pub/sub.
type RedisStore struct {
	client     redis.UniversalClient
	limiter    *redis_rate.Limiter
	ownsClient bool
	prefix     string
	realmTag   string // RealmTag(opts.Realm), in every record
	channel    string
	origin     string // tells this store's own revocation messages apart
	opts       Options
	// waitReplicas and waitTimeout: RedisConfig.WaitReplicas, WaitTimeout.
	waitReplicas int
	waitTimeout  time.Duration

	cache   *localCache // nil: disabled
	touches *touchQueue // with the cache: last-use writes off the request path
	flight  singleflight.Group
	hooks   revokeHooks
	// claimsHooks: OnClaimsChange (claims_redis.go).
	claimsHooks claimsHooks

	// live is true while the revocation subscription is known to be
	// connected; the cache is bypassed otherwise.
	live       atomic.Bool
	pubsub     *redis.PubSub
	stopListen context.CancelFunc // also stops touchLoop
	listenDone chan struct{}
	touchDone  chan struct{}
	closeOnce  sync.Once
	closed     atomic.Bool
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore connects to Redis as cfg says. It does not wait for Redis to
// answer: call Ping for that. Close releases the connections.
func NewRedisStore(cfg RedisConfig, opts Options) (*RedisStore, error) {
	uo, err := cfg.UniversalOptions()
	if err != nil {
		return nil, err
	}
	s, err := newRedisStore(redis.NewUniversalClient(uo), true, cfg, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NewRedisStoreFromClient uses an existing client (tests, or a client shared
// with other code). Only cfg's KeyPrefix, CacheSize and CacheTTL are used.
// Close leaves the client open.
func NewRedisStoreFromClient(client redis.UniversalClient, cfg RedisConfig, opts Options) (*RedisStore, error) {
	return newRedisStore(client, false, cfg, opts)
}

func newRedisStore(client redis.UniversalClient, owns bool, cfg RedisConfig, opts Options) (*RedisStore, error) {
	fail := func(err error) (*RedisStore, error) {
		if owns {
			_ = client.Close()
		}
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return fail(err)
	}
	if err := cfg.validateWait(); err != nil {
		return fail(err)
	}
	prefix, err := cfg.keyPrefix(opts.Realm)
	if err != nil {
		return fail(err)
	}
	var originBytes [8]byte
	if _, err := rand.Read(originBytes[:]); err != nil {
		return fail(fmt.Errorf("reading random bytes: %w", err))
	}
	s := &RedisStore{
		client:     client,
		limiter:    redis_rate.NewLimiter(client),
		ownsClient: owns,
		prefix:     prefix,
		realmTag:   RealmTag(opts.Realm),
		channel:    prefix + "revoke",
		origin:     b64.EncodeToString(originBytes[:]),
		opts:       opts.withDefaults(),
		listenDone: make(chan struct{}),
		touchDone:  make(chan struct{}),

		waitReplicas: cfg.WaitReplicas,
		waitTimeout:  durationOr(cfg.WaitTimeout, DefaultWaitTimeout),
	}
	if cfg.CacheSize >= 0 && cfg.CacheTTL >= 0 {
		s.cache = newLocalCache(intOr(cfg.CacheSize, DefaultCacheSize), durationOr(cfg.CacheTTL, DefaultCacheTTL))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopListen = cancel
	// Subscribe records the channel even if Redis is down; the listener
	// connects and resubscribes until Close.
	s.pubsub = client.Subscribe(ctx, s.channel)
	go s.listen(ctx)
	if s.cache != nil {
		s.touches = newTouchQueue()
		go s.touchLoop(ctx)
	} else {
		close(s.touchDone)
	}
	return s, nil
}

func intOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func (s *RedisStore) sessionKey(tag, sessionID string) string {
	return s.prefix + "{" + tag + "}:s:" + sessionID
}

// indexKey leaves the user ID out: the token's tag alone names it, and the
// key stays short.
func (s *RedisStore) indexKey(tag string) string {
	return s.prefix + "{" + tag + "}:u"
}

func (s *RedisStore) revokeMessage(sessionIDs ...string) string {
	return s.origin + " " + strings.Join(sessionIDs, " ")
}

// unavailable wraps a backend failure. go-redis errors name no keys or
// values, so they are safe to pass on.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// Create implements Store.
func (s *RedisStore) Create(ctx context.Context, n NewSession) (string, *Session, error) {
	token, sess, _, err := s.CreateEvicting(ctx, n)
	return token, sess, err
}

// CreateEvicting implements Evicting.
func (s *RedisStore) CreateEvicting(ctx context.Context, n NewSession) (string, *Session, []string, error) {
	if err := n.validate(); err != nil {
		return "", nil, nil, err
	}
	token, p, err := newToken(n.UserID)
	if err != nil {
		return "", nil, nil, err
	}
	now := s.opts.now()
	sess := &Session{
		ID:         p.sessionID,
		UserID:     n.UserID,
		Provider:   n.Provider,
		CreatedAt:  now,
		ExpiresAt:  n.expiresAt(now, s.opts.SessionTTL),
		LastUsedAt: now,
		Profile:    n.Profile,
		UserAgent:  CapUserAgent(n.UserAgent),
		AuthTime:   now,
		AMR:        slices.Clone(n.AMR),
	}
	rec, err := encodeRecord(sess, s.realmTag)
	if err != nil {
		return "", nil, nil, err
	}
	keys := []string{s.sessionKey(p.userTag, p.sessionID), s.indexKey(p.userTag)}
	// Index scores are seconds with milliseconds as fractions: the unit of
	// the entries written before scores were ends (whole seconds of the
	// absolute expiry), which order and prune among them.
	endSeconds := float64(sess.EndsAt(s.opts.IdleTTL).UnixMilli()) / 1000
	var evicted []string
	err = s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		var err error
		evicted, err = s.runScript(ctx, sessionWrite, createScript, keys,
			rec, max(s.opts.redisTTL(sess, now).Milliseconds(), 1), p.sessionID,
			endSeconds, float64(now.UnixMilli())/1000, s.opts.SessionTTL.Milliseconds(),
			s.opts.MaxSessionsPerUser, s.channel, s.origin,
		).StringSlice()
		return err
	})
	if err != nil {
		return "", nil, nil, unavailable("create", err)
	}
	if len(evicted) > 0 {
		s.revokedHere(evicted...)
		s.deleteEvicted(ctx, p.userTag, evicted)
	}
	return token, sess, evicted, nil
}

// deleteEvicted deletes the records of sessions the cap ended. They are
// signed out already (gone from the index, which every lookup checks), so
// a failure only leaves records for their TTL or their next lookup.
func (s *RedisStore) deleteEvicted(ctx context.Context, tag string, ids []string) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.sessionKey(tag, id)
	}
	_ = s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.client.Del(ctx, keys...).Err()
	})
}

// Lookup implements Store. With the cache on, a session looked up within the
// cache TTL is served locally; when its last use is due to be written, the
// write is queued for the background writer (touchLoop), never made on the
// request path. Concurrent misses for one token share one Redis round trip.
func (s *RedisStore) Lookup(ctx context.Context, token string) (*Session, error) {
	p, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	now := s.opts.now()
	if s.cache != nil && s.live.Load() {
		if sess, touchDue := s.cache.get(p.sessionID, now, s.opts); sess != nil {
			if touchDue && s.touches.add(p, now) {
				s.cache.touched(p.sessionID, now)
				sess.LastUsedAt = now
			}
			if info := lookupInfo(ctx); info != nil {
				info.CacheHit = true
			}
			return sess, nil
		}
	}
	// Only now, past the cache, is a deadline worth its timer.
	ctx, cancel := withLookupDeadline(ctx)
	defer cancel()
	if s.cache == nil {
		return s.lookupRedis(ctx, p, now)
	}
	// The shared call must not fail because the first caller gave up; the
	// client's read/write timeouts still bound it.
	shared := context.WithoutCancel(ctx)
	ch := s.flight.DoChan(p.sessionID, func() (any, error) {
		epoch := s.cache.currentEpoch()
		cacheable := s.live.Load()
		sess, err := s.lookupRedis(shared, p, now)
		if err == nil && cacheable {
			s.cache.put(sess, now, epoch)
		}
		return sess, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Session).clone(), nil
	case <-ctx.Done():
		return nil, unavailable("lookup", ctx.Err())
	}
}

// DefaultLookupTimeout bounds a Lookup that has to ask Redis when the
// caller's context has no deadline: an unreachable store must turn into a
// prompt error, not a hung request.
const DefaultLookupTimeout = httprule.StoreCallTimeout

func withLookupDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultLookupTimeout)
}

// LookupRef implements Store.
func (s *RedisStore) LookupRef(ctx context.Context, ref Ref) (*Session, error) {
	if !ref.Valid() {
		return nil, ErrNotFound
	}
	ctx, cancel := withLookupDeadline(ctx)
	defer cancel()
	return s.lookupRedis(ctx, ref.parsed(), s.opts.now())
}

func (s *RedisStore) lookupRedis(ctx context.Context, p parsedToken, now time.Time) (*Session, error) {
	raw, err := lookupScript.Run(ctx, s.client, []string{s.sessionKey(p.userTag, p.sessionID), s.indexKey(p.userTag)},
		now.UnixMilli(), s.opts.IdleTTL.Milliseconds(), s.opts.TouchInterval.Milliseconds(), p.sessionID, s.realmTag,
	).Text()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		// Lookups do not retry (an outage must not hold every request for
		// the whole deadline), but the next one should find the new master.
		if failoverError(err) {
			s.reloadTopology()
		}
		return nil, unavailable("lookup", err)
	}
	sess, err := decodeRecord(p.sessionID, []byte(raw), s.realmTag)
	if err != nil {
		return nil, err
	}
	// Enforced here too, whatever Redis holds.
	if userTag(sess.UserID) != p.userTag {
		return nil, ErrNotFound
	}
	if sess.expired(now, s.opts.IdleTTL) {
		return nil, &EndedError{Session: sess}
	}
	return sess, nil
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, token string) error {
	p, err := parseToken(token)
	if err != nil {
		return nil // no such session can exist
	}
	keys := []string{s.sessionKey(p.userTag, p.sessionID), s.indexKey(p.userTag)}
	err = s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.runScript(ctx, revocation, deleteScript, keys, p.sessionID, s.channel, s.revokeMessage(p.sessionID), s.realmTag).Err()
	})
	if err != nil {
		return unavailable("delete", err)
	}
	s.revokedHere(p.sessionID)
	return nil
}

// DeleteByID implements Store.
func (s *RedisStore) DeleteByID(ctx context.Context, userID, sessionID string) error {
	if userID == "" || !validSessionID(sessionID) {
		return ErrNotFound
	}
	now := s.opts.now()
	tag := userTag(userID)
	keys := []string{s.sessionKey(tag, sessionID), s.indexKey(tag)}
	var n int
	err := s.retryWrite(ctx, func(ctx context.Context, attempt int) error {
		var err error
		n, err = s.runScript(ctx, revocation, deleteByIDScript, keys, sessionID, s.channel,
			s.revokeMessage(sessionID), now.UnixMilli(), s.opts.IdleTTL.Milliseconds(), userID, s.realmTag).Int()
		if err == nil && n < 0 && attempt > 0 {
			// An earlier attempt may have deleted it before failing.
			n = 1
		}
		return err
	})
	if err != nil {
		return unavailable("delete by id", err)
	}
	// Gone from Redis, it is revoked here too: this instance may still
	// cache it (a delete that landed but whose answer was lost).
	s.revokedHere(sessionID)
	if n < 0 {
		return ErrNotFound
	}
	if n == 0 {
		return ErrNotFound // it had expired
	}
	return nil
}

// DeleteUser implements Store.
func (s *RedisStore) DeleteUser(ctx context.Context, userID string, exceptSessionID string) (int, error) {
	if userID == "" {
		return 0, nil
	}
	tag := userTag(userID)
	index := s.indexKey(tag)
	for range maxDeleteUserAttempts {
		var ids []string
		var res []any
		err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
			var err error
			if ids, err = s.client.ZRange(ctx, index, 0, -1).Result(); err != nil || len(ids) == 0 {
				return err
			}
			now := s.opts.now()
			keys := make([]string, 0, 1+len(ids))
			keys = append(keys, index)
			args := make([]any, 0, 7+len(ids))
			args = append(args, exceptSessionID, s.channel, s.origin, now.UnixMilli(), s.opts.IdleTTL.Milliseconds(), userID, s.realmTag)
			for _, id := range ids {
				keys = append(keys, s.sessionKey(tag, id))
				args = append(args, id)
			}
			res, err = s.runScript(ctx, revocation, deleteUserScript, keys, args...).Slice()
			return err
		})
		if err != nil {
			return 0, unavailable("delete user", err)
		}
		if len(ids) == 0 {
			return 0, nil
		}
		ended, ok := res[0].(int64)
		if !ok {
			return 0, unavailable("delete user", fmt.Errorf("unexpected script reply %T", res[0]))
		}
		if ended < 0 {
			continue // a session was added or removed meanwhile
		}
		revoked := make([]string, 0, len(res)-1)
		for _, v := range res[1:] {
			if id, ok := v.(string); ok {
				revoked = append(revoked, id)
			}
		}
		s.revokedHere(revoked...)
		return int(ended), nil
	}
	return 0, unavailable("delete user", errors.New("the user's sessions kept changing; try again"))
}

// List implements Store.
func (s *RedisStore) List(ctx context.Context, userID string) ([]*Session, error) {
	out := []*Session{}
	if userID == "" {
		return out, nil
	}
	tag := userTag(userID)
	index := s.indexKey(tag)
	// The cap's worth that end last: all a Create leaves.
	ids, err := retried(ctx, s, func(ctx context.Context, _ int) ([]string, error) {
		return s.client.ZRange(ctx, index, -int64(s.opts.MaxSessionsPerUser), -1).Result()
	})
	if err != nil {
		return nil, unavailable("list", err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.sessionKey(tag, id)
	}
	vals, err := retried(ctx, s, func(ctx context.Context, _ int) ([]any, error) {
		return s.client.MGet(ctx, keys...).Result()
	})
	if err != nil {
		return nil, unavailable("list", err)
	}
	now := s.opts.now()
	var gone []any
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			gone = append(gone, ids[i])
			continue
		}
		sess, err := decodeRecord(ids[i], []byte(raw), s.realmTag)
		if err != nil || sess.UserID != userID || sess.expired(now, s.opts.IdleTTL) {
			continue
		}
		out = append(out, sess)
	}
	if len(gone) > 0 {
		// Index entries of sessions Redis expired; harmless if this fails.
		_ = s.client.ZRem(ctx, index, gone...).Err()
	}
	sortSessions(out)
	return out, nil
}

// Reauthenticate implements Store: the record is rewritten in place with
// its new authentication (rewrite; a touch's new last use is kept).
func (s *RedisStore) Reauthenticate(ctx context.Context, userID, sessionID string, at time.Time, amr []string) error {
	if err := ValidateAMR(amr); err != nil {
		return err
	}
	if userID == "" || !validSessionID(sessionID) {
		return ErrNotFound
	}
	ok, err := s.rewrite(ctx, userTag(userID), userID, sessionID, func(sess *Session) bool {
		sess.AuthTime, sess.AMR = time.UnixMilli(at.UnixMilli()).UTC(), amr
		return true
	})
	switch {
	case errors.Is(err, ErrInvalidSession):
		return err
	case err != nil:
		return unavailable("reauthenticate", err)
	case !ok:
		return ErrNotFound
	}
	return nil
}

func sortSessions(ss []*Session) {
	slices.SortFunc(ss, func(a, b *Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// OnRevoke implements Store.
func (s *RedisStore) OnRevoke(fn func(sessionID string)) func() { return s.hooks.onRevoke(fn) }

// OnRevokeAll implements Store.
func (s *RedisStore) OnRevokeAll(fn func()) func() { return s.hooks.onRevokeAll(fn) }

// Ping implements Store.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close implements Store: it stops the revocation listener and the
// background last-use writer (writes still queued are dropped; a session's
// next lookup writes it) and, unless the client was passed in, closes the
// connections.
func (s *RedisStore) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stopListen()
		_ = s.pubsub.Close()
		<-s.listenDone
		<-s.touchDone
		if s.ownsClient {
			err = s.client.Close()
		}
	})
	return err
}

// revokedHere applies a revocation made by this store: the cache drops the
// sessions and the hooks run before the call returns.
func (s *RedisStore) revokedHere(ids ...string) {
	if len(ids) == 0 {
		return
	}
	if s.cache != nil {
		s.cache.drop(ids...)
	}
	s.hooks.revoked(ids...)
}
