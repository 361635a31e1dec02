package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Writes through a failover. A write that fails because its master is gone
// or changing role is retried until the caller's deadline, so that it
// succeeds as soon as the new master is known. Writes that must outlive
// losing their master (every revocation; session creation with
// WaitReplicas) run WAIT on the connection of the master that took them:
// WAIT counts that connection's own writes, and cannot run inside a script.

const (
	// DefaultWaitTimeout bounds how long a write waits for replicas to
	// acknowledge it.
	DefaultWaitTimeout = time.Second
	// defaultWriteDeadline bounds a write whose context has no deadline,
	// retries included.
	defaultWriteDeadline = DefaultLookupTimeout
	writeRetryMin        = 20 * time.Millisecond
	writeRetryMax        = 250 * time.Millisecond
)

// errMasterChanged: the node that took the write was demoted before its
// replicas could be asked; the write may be lost, so it is redone.
var errMasterChanged = errors.New("the master changed role during the write")

// errTooFewReplicas: the write reached the master but not enough replicas;
// the write is not undone (retrying it is safe).
var errTooFewReplicas = errors.New("too few replicas acknowledged the write")

// durability says how many replicas must acknowledge a write.
type durability int

const (
	// notWaited writes return once the master took them.
	notWaited durability = iota
	// sessionWrite waits for RedisConfig.WaitReplicas replicas, if set.
	sessionWrite
	// revocation waits for every connected replica and needs at least
	// max(1, WaitReplicas) of them, or all if fewer are connected.
	// Either waits only for replicas connected when the write ran.
	revocation
)

// withWriteDeadline gives a write without a deadline one, so that retries
// end.
func withWriteDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultWriteDeadline)
}

// retryWrite runs op until it succeeds, fails for a reason other than a
// failover in progress, or the context's deadline leaves no time for another
// attempt. op must be idempotent. attempt counts from 0.
func (s *RedisStore) retryWrite(ctx context.Context, op func(ctx context.Context, attempt int) error) error {
	ctx, cancel := withWriteDeadline(ctx)
	defer cancel()
	wait := writeRetryMin
	for attempt := 0; ; attempt++ {
		err := op(ctx, attempt)
		// A closed store's client answers ErrClosed for good.
		if err == nil || !failoverError(err) || ctx.Err() != nil || s.closed.Load() {
			return err
		}
		s.reloadTopology() // asynchronous: the next attempt may see it
		if dl, _ := ctx.Deadline(); time.Until(dl) < wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, writeRetryMax)
	}
}

// retried runs f as retryWrite does and returns its result. f must be
// idempotent, or tell from attempt > 0 that an earlier try may have
// succeeded.
func retried[T any](ctx context.Context, s *RedisStore, f func(ctx context.Context, attempt int) (T, error)) (T, error) {
	var v T
	err := s.retryWrite(ctx, func(ctx context.Context, attempt int) error {
		var err error
		v, err = f(ctx, attempt)
		return err
	})
	return v, err
}

// setNXRetried is SET NX that, when retried, counts a key already holding
// val as its own earlier success.
func (s *RedisStore) setNXRetried(ctx context.Context, key string, val []byte) (bool, error) {
	return s.setNXRetriedTTL(ctx, key, val, 0)
}

// deleteWaited deletes key and, as a revocation does, waits for the
// replicas: what it removes must not come back in a failover.
func (s *RedisStore) deleteWaited(ctx context.Context, op, key string) error {
	err := s.retryWrite(ctx, func(ctx context.Context, _ int) error {
		return s.runScript(ctx, revocation, deleteKeyScript, []string{key}).Err()
	})
	if err != nil {
		return unavailable(op, err)
	}
	return nil
}

// deleteKeyScript deletes KEYS[1], in a script so that runScript can wait
// for replicas.
var deleteKeyScript = redis.NewScript(`return redis.call('DEL', KEYS[1])`)

// setNXRetriedTTL is setNXRetried for a key that expires after ttl (0:
// never).
func (s *RedisStore) setNXRetriedTTL(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return retried(ctx, s, func(ctx context.Context, attempt int) (bool, error) {
		ok, err := s.client.SetNX(ctx, key, val, ttl).Result()
		if err == nil && !ok && attempt > 0 {
			cur, gerr := s.client.Get(ctx, key).Result()
			if gerr == nil && cur == string(val) {
				return true, nil
			}
		}
		return ok, err
	})
}

// reloadTopology asks a Cluster client to reload its slot map in the
// background, after an error that a failover explains. go-redis reloads it
// by itself only on MOVED and READONLY replies, or when the map is 10 s
// old: a node that is gone answers neither, so without this a store that
// only reads would keep asking a dead master that long.
func (s *RedisStore) reloadTopology() {
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		cc.ReloadState(context.Background())
	}
}

// failoverError reports an error that a failover explains: the master is
// unreachable, is now a replica, or the cluster is settling.
func failoverError(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, errTooFewReplicas) {
		return false
	}
	if _, moved := redis.IsMovedError(err); moved {
		return true
	}
	if _, ask := redis.IsAskError(err); ask {
		return true
	}
	// A write paused by a manual failover on the old master is refused
	// with UNBLOCKED when that master becomes a replica.
	if redis.HasErrorPrefix(err, "UNBLOCKED") {
		return true
	}
	// A master configured with min-replicas-to-write refuses writes while
	// too few replicas are connected, as right after a failover until the
	// others resync with it.
	if redis.HasErrorPrefix(err, "NOREPLICAS") {
		return true
	}
	var ne net.Error
	return redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) || redis.IsTryAgainError(err) ||
		redis.IsLoadingError(err) || redis.IsMasterDownError(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, errMasterChanged) || errors.As(err, &ne)
}

// masterConn returns a connection to the master that owns key, or nil if the
// client cannot name one (a caller-supplied client of another kind).
func (s *RedisStore) masterConn(ctx context.Context, key string) (*redis.Conn, error) {
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return node.Conn(), nil
	case *redis.Client: // standalone, or a Sentinel failover client
		return c.Conn(), nil
	}
	return nil, nil
}

// runScript runs script once on the master that owns keys[0] and, as d
// asks, waits for its replicas to acknowledge it.
func (s *RedisStore) runScript(ctx context.Context, d durability, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	var conn *redis.Conn
	if d == revocation || (d == sessionWrite && s.waitReplicas > 0) {
		var err error
		if conn, err = s.masterConn(ctx, keys[0]); err != nil {
			cmd := redis.NewCmd(ctx)
			cmd.SetErr(err)
			return cmd
		}
	}
	if conn == nil {
		return script.Run(ctx, s.client, keys, args...)
	}
	defer conn.Close()
	var res *redis.Cmd
	var role *redis.Cmd
	exec := func(eval func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd) error {
		_, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
			res = eval(ctx, p, keys, args...)
			role = p.Do(ctx, "ROLE")
			return nil
		})
		return err
	}
	err := exec(script.EvalSha)
	if redis.HasErrorPrefix(res.Err(), "NOSCRIPT") {
		// A promoted replica has an empty script cache.
		err = exec(script.Eval)
	}
	if res.Err() != nil {
		return res
	}
	var roleReply []any
	if err == nil {
		roleReply, err = role.Slice()
	}
	if err == nil {
		err = s.waitForReplicas(ctx, conn, d, roleReply)
	}
	if err != nil {
		res.SetErr(err)
	}
	return res
}

// waitForReplicas runs WAIT on conn for the replicas d asks for. role is the
// master's ROLE reply, read with the write: a replica that is not connected
// cannot acknowledge it.
func (s *RedisStore) waitForReplicas(ctx context.Context, conn *redis.Conn, d durability, role []any) error {
	if len(role) < 3 || role[0] != "master" {
		// The write succeeded, so the node was a master; it answered ROLE
		// after a failover demoted it: its write may be lost.
		return errMasterChanged
	}
	replicas, _ := role[2].([]any)
	connected := len(replicas)
	// A master waits for the replicas it has: with none connected there is
	// nothing that could keep the write, and refusing it would turn every
	// lost replica into an outage.
	need := min(s.waitReplicas, connected)
	waitFor := need
	if d == revocation {
		need = min(max(s.waitReplicas, 1), connected)
		waitFor = connected
	}
	if need == 0 {
		return nil
	}
	timeout := s.waitTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl)-10*time.Millisecond)
	}
	if timeout < time.Millisecond {
		return context.DeadlineExceeded
	}
	acked, err := conn.Wait(ctx, waitFor, timeout).Result()
	if err != nil {
		return err
	}
	if int(acked) < need {
		return fmt.Errorf("%w: %d of %d within %s", errTooFewReplicas, acked, need, timeout)
	}
	return nil
}
