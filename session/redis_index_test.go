package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// TestRedisIndexIsBoundedAndScoredByEnd: the user's index holds one entry
// per live session, scored by when it ends unused; a touch moves the
// score; a write prunes ended entries; the cap's evicted sessions leave
// neither an entry nor a record; an entry of the earlier format (scored
// by absolute expiry) is neither pruned early nor evicted first.
func TestRedisIndexIsBoundedAndScoredByEnd(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	prefix := uniquePrefix()
	opts := Options{SessionTTL: 10 * time.Hour, IdleTTL: 2 * time.Hour, TouchInterval: time.Minute, Now: clock.Now, MaxSessionsPerUser: 3}
	s := newTestRedisStore(t, srv.Addr, false, prefix, -1, opts)
	rdb := newTestClient(t, srv.Addr, false)
	ctx := context.Background()
	index := s.indexKey(userTag("idx"))
	score := func(id string) float64 {
		t.Helper()
		v, err := rdb.ZScore(ctx, index, id).Result()
		if errors.Is(err, redis.Nil) {
			return -1
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	endScore := func(sess *Session) float64 {
		return float64(sess.EndsAt(opts.IdleTTL).UnixMilli()) / 1000
	}

	tokA, a, _ := s.Create(ctx, NewSession{UserID: "idx"})
	if got, want := score(a.ID), endScore(a); got != want {
		t.Fatalf("a new session's score %v; want its end %v", got, want)
	}
	clock.Advance(10 * time.Minute)
	touched, err := s.Lookup(ctx, tokA)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := score(a.ID), endScore(touched); got != want {
		t.Fatalf("a touched session's score %v; want its new end %v", got, want)
	}

	// An earlier-format entry: scored by absolute expiry, later than its end.
	_, old, _ := s.Create(ctx, NewSession{UserID: "idx"})
	rdb.ZAdd(ctx, index, redis.Z{Score: float64(old.ExpiresAt.Unix() + 1), Member: old.ID})

	clock.Advance(opts.IdleTTL + time.Second) // a (and old, by its end) ended
	_, b, evicted, err := s.CreateEvicting(ctx, NewSession{UserID: "idx"})
	if err != nil || len(evicted) != 0 {
		t.Fatalf("create: %v, evicted %v", err, evicted)
	}
	if score(a.ID) != -1 {
		t.Fatal("an ended session's entry survived a write")
	}
	if score(old.ID) == -1 {
		t.Fatal("an entry of the earlier format was pruned before its absolute expiry")
	}
	// At the cap (3: old, b, c), the next ends the least recently used
	// by its score: b, not old (scored later).
	clock.Advance(time.Minute)
	_, c, _ := s.Create(ctx, NewSession{UserID: "idx"})
	clock.Advance(time.Minute)
	_, _, evicted, err = s.CreateEvicting(ctx, NewSession{UserID: "idx"})
	if err != nil || len(evicted) != 1 || evicted[0] != b.ID {
		t.Fatalf("evicted %v, %v; want b %s (c is %s)", evicted, err, b.ID, c.ID)
	}
	if n := rdb.Exists(ctx, s.sessionKey(userTag("idx"), b.ID)).Val(); n != 0 || score(b.ID) != -1 {
		t.Fatal("the evicted session's record or entry is still there")
	}
	if n := rdb.ZCard(ctx, index).Val(); n != 3 {
		t.Fatalf("the index holds %d entries; want the cap, 3", n)
	}
}
