package events

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Queue holds events until they are delivered or dead-lettered. Each
// entry is read by one consumer at a time; Head tells a consumer whether an
// entry is the first unfinished one of its key, so events of one user go out
// in order even when several consumers (instances) share the queue.
type Queue interface {
	// Enqueue appends ev to the queue and to the end of its key's line.
	Enqueue(ctx context.Context, ev Event) error
	// Read hands consumer up to n entries no consumer holds: new ones, and
	// ones whose consumer has not kept them for the queue's claim idle
	// time (it died). With none, it waits up to wait.
	Read(ctx context.Context, consumer string, n int, wait time.Duration) ([]Entry, error)
	// Keep tells the queue that consumer still holds refs, so no other
	// consumer claims them, and returns those another consumer claimed
	// meanwhile (consumer stalled for longer than the claim idle time).
	Keep(ctx context.Context, consumer string, refs []string) (lost []string, err error)
	// Head reports whether e is the first unfinished entry of its key.
	Head(ctx context.Context, e Entry) (bool, error)
	// Done removes a delivered entry.
	Done(ctx context.Context, e Entry) error
	// Dead removes an undeliverable entry and keeps it as a dead letter.
	Dead(ctx context.Context, e Entry, d DeadLetter) error
	// DeadLetters returns up to n dead letters, newest first.
	DeadLetters(ctx context.Context, n int) ([]DeadLetter, error)
	// ClaimIdle is how long a held entry may go without Keep before
	// another consumer may take it; zero when there is one consumer only.
	ClaimIdle() time.Duration
	// Backlog counts what waits, for a gauge read at scrape time: one
	// cheap call (two counters in Redis), never a scan.
	Backlog(ctx context.Context) (Backlog, error)
}

// Backlog is a queue's size. A Redis queue is shared by the realm's
// instances, so each of them reports the same numbers.
type Backlog struct {
	// Pending are events queued and not yet delivered, those being
	// retried included.
	Pending int64
	// Dead are the dead letters kept (at most the queue's bound).
	Dead int64
}

// Entry is an event in the queue. Ref is the queue's own ID for it; refs
// of one queue sort in enqueue order (compareRefs).
type Entry struct {
	Ref string
	Event
}

// DeadLetter is an event given up on: kept for the admin API.
type DeadLetter struct {
	ID        string          `json:"id"`
	UserID    string          `json:"userId"`
	Body      json.RawMessage `json:"body"`
	CreatedAt int64           `json:"createdAt"`
	DeadAt    int64           `json:"deadAt"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"lastError"`
}

// DefaultMaxDeadLetters bounds the dead letters kept; older ones are
// dropped (the metric still counts them).
const DefaultMaxDeadLetters = 1000

// compareRefs orders refs of the form "<ms>-<seq>" (Redis stream IDs; the
// memory queue uses the same form).
func compareRefs(a, b string) int {
	am, as := splitRef(a)
	bm, bs := splitRef(b)
	switch {
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

func splitRef(r string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(r, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	s, _ := strconv.ParseUint(seq, 10, 64)
	return m, s
}

// MemoryQueue is the queue of the in-process store: one consumer, and lost
// when the process exits.
type MemoryQueue struct {
	mu      sync.Mutex
	seq     uint64
	entries []Entry             // not yet handed out, in order
	lines   map[string][]string // key → refs not done, in order
	dead    []DeadLetter        // newest first
	maxDead int
	wake    chan struct{}
}

// NewMemoryQueue returns an empty queue keeping up to maxDead dead
// letters (0: DefaultMaxDeadLetters).
func NewMemoryQueue(maxDead int) *MemoryQueue {
	if maxDead <= 0 {
		maxDead = DefaultMaxDeadLetters
	}
	return &MemoryQueue{lines: map[string][]string{}, maxDead: maxDead, wake: make(chan struct{}, 1)}
}

// Enqueue implements Queue.
func (q *MemoryQueue) Enqueue(_ context.Context, ev Event) error {
	q.mu.Lock()
	q.seq++
	ref := "0-" + strconv.FormatUint(q.seq, 10)
	q.entries = append(q.entries, Entry{Ref: ref, Event: ev})
	q.lines[ev.Key] = append(q.lines[ev.Key], ref)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// Read implements Queue.
func (q *MemoryQueue) Read(ctx context.Context, _ string, n int, wait time.Duration) ([]Entry, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if len(q.entries) > 0 {
			k := min(n, len(q.entries))
			out := append([]Entry(nil), q.entries[:k]...)
			q.entries = q.entries[k:]
			q.mu.Unlock()
			return out, nil
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-timer.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Keep implements Queue: nobody else could claim.
func (q *MemoryQueue) Keep(context.Context, string, []string) ([]string, error) { return nil, nil }

// ClaimIdle implements Queue: one consumer.
func (q *MemoryQueue) ClaimIdle() time.Duration { return 0 }

// Head implements Queue.
func (q *MemoryQueue) Head(_ context.Context, e Entry) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	line := q.lines[e.Key]
	return len(line) == 0 || line[0] == e.Ref, nil
}

func (q *MemoryQueue) finish(e Entry) {
	line := q.lines[e.Key]
	for i, r := range line {
		if r == e.Ref {
			line = append(line[:i:i], line[i+1:]...)
			break
		}
	}
	if len(line) == 0 {
		delete(q.lines, e.Key)
	} else {
		q.lines[e.Key] = line
	}
}

// Done implements Queue.
func (q *MemoryQueue) Done(_ context.Context, e Entry) error {
	q.mu.Lock()
	q.finish(e)
	q.mu.Unlock()
	return nil
}

// Dead implements Queue.
func (q *MemoryQueue) Dead(_ context.Context, e Entry, d DeadLetter) error {
	q.mu.Lock()
	q.finish(e)
	q.dead = append([]DeadLetter{d}, q.dead...)
	if len(q.dead) > q.maxDead {
		q.dead = q.dead[:q.maxDead]
	}
	q.mu.Unlock()
	return nil
}

// DeadLetters implements Queue.
func (q *MemoryQueue) DeadLetters(_ context.Context, n int) ([]DeadLetter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]DeadLetter(nil), q.dead[:min(n, len(q.dead))]...), nil
}

// Backlog implements Queue.
func (q *MemoryQueue) Backlog(context.Context) (Backlog, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var pending int
	for _, line := range q.lines {
		pending += len(line)
	}
	return Backlog{Pending: int64(pending), Dead: int64(len(q.dead))}, nil
}

var _ Queue = (*MemoryQueue)(nil)
