package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// seedWorkers create sessions concurrently; each Create is one script call.
const seedWorkers = 16

// benchProfile is a realistic profile: a Convex-style user ID, a GitHub
// avatar, a verified email.
func benchNewSession(i int) session.NewSession {
	return session.NewSession{
		UserID:   fmt.Sprintf("k57%029d", i),
		Provider: "github",
		Profile: session.Profile{
			Email:         fmt.Sprintf("someone.%d@example.com", i),
			EmailVerified: true,
			Name:          "Someone Withaname",
			Picture:       fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", 10000000+i),
		},
	}
}

// seedSessions creates n sessions through the session package (the gateway
// reads them as its own) and returns their cookie tokens.
func seedSessions(ctx context.Context, redisURL string, first, n int) ([]string, error) {
	st, err := session.NewRedisStore(session.RedisConfig{URL: redisURL, CacheSize: -1}, session.Options{Realm: benchRealm})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	tokens := make([]string, n)
	errs := make(chan error, seedWorkers)
	var wg sync.WaitGroup
	for w := range seedWorkers {
		wg.Go(func() {
			for i := w; i < n; i += seedWorkers {
				tok, _, err := st.Create(ctx, benchNewSession(first+i))
				if err != nil {
					errs <- err
					return
				}
				tokens[i] = tok
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("creating sessions: %w", err)
	}
	return tokens, nil
}

// redisMemory is what n sessions cost in Redis.
type redisMemory struct {
	sessions        int
	perSession      int64 // MEMORY USAGE of every key, divided by sessions
	sessionKey      int64 // of which the session record
	indexKey        int64 // of which the user index
	usedMemoryDelta int64 // INFO used_memory after - before, divided by sessions
}

// measureRedisMemory creates n sessions in their own database and sums
// MEMORY USAGE over every key.
func measureRedisMemory(ctx context.Context, addr string, db, n int) (redisMemory, error) {
	client := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	defer client.Close()
	if err := client.FlushDB(ctx).Err(); err != nil {
		return redisMemory{}, err
	}
	before, err := usedMemory(ctx, client)
	if err != nil {
		return redisMemory{}, err
	}
	if _, err := seedSessions(ctx, "redis://"+addr+"/"+strconv.Itoa(db), 0, n); err != nil {
		return redisMemory{}, err
	}
	after, err := usedMemory(ctx, client)
	if err != nil {
		return redisMemory{}, err
	}
	var sessionBytes, indexBytes int64
	iter := client.Scan(ctx, 0, "*", 1000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		pipe := client.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, k := range keys {
			if strings.Contains(k, "}:s:") {
				sessionBytes += cmds[i].Val()
			} else {
				indexBytes += cmds[i].Val()
			}
		}
		keys = keys[:0]
		return nil
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := flush(); err != nil {
				return redisMemory{}, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return redisMemory{}, err
	}
	if err := flush(); err != nil {
		return redisMemory{}, err
	}
	m := redisMemory{
		sessions:        n,
		perSession:      (sessionBytes + indexBytes) / int64(n),
		sessionKey:      sessionBytes / int64(n),
		indexKey:        indexBytes / int64(n),
		usedMemoryDelta: (after - before) / int64(n),
	}
	return m, client.FlushDB(ctx).Err()
}

func usedMemory(ctx context.Context, c *redis.Client) (int64, error) {
	return infoField(ctx, c, "memory", "used_memory")
}

// infoField reads one numeric field of INFO section.
func infoField(ctx context.Context, c *redis.Client, section, field string) (int64, error) {
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO %s has no %s", section, field)
}

// scriptCalls counts the script calls Redis has served (a session lookup is
// one EVALSHA, or one EVAL when the script was not loaded yet).
func scriptCalls(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	return redistest.ScriptCalls(info)
}

// lastUseWrites counts the last-use writes Redis has served: the lookup
// script's SETRANGE, whether a request or the background writer ran it.
func lastUseWrites(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	return redistest.CommandCalls(info, "setrange")
}
