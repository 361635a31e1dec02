package events

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testSecret(t testing.TB) (string, Secret) {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	s := SecretPrefix + base64.StdEncoding.EncodeToString(raw)
	sec, err := ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, sec
}

// received is one request the receiver got.
type received struct {
	ID, Timestamp, Signature string
	Body                     []byte
	Type                     string
	UserID                   string
	Seq                      int // data.seq of test events
}

// receiver records POSTs; while down it answers 503. It dedupes on
// webhook-id as an app would.
type receiver struct {
	srv   *httptest.Server
	down  atomic.Bool
	mu    sync.Mutex
	all   []received
	seen  map[string]bool
	apply []received // after dedupe
	// fail, if set, answers a request with its status instead (non-zero).
	fail atomic.Pointer[func(*http.Request) int]
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{seen: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if rc.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if f := rc.fail.Load(); f != nil {
		if status := (*f)(r); status != 0 {
			w.WriteHeader(status)
			return
		}
	}
	var env struct {
		Type string `json:"type"`
		Data struct {
			User    struct{ ID string } `json:"user"`
			Session struct {
				UserID string `json:"userId"`
			} `json:"session"`
			Seq int `json:"seq"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	got := received{ID: r.Header.Get(HeaderID), Timestamp: r.Header.Get(HeaderTimestamp), Signature: r.Header.Get(HeaderSignature),
		Body: body, Type: env.Type, UserID: env.Data.User.ID, Seq: env.Data.Seq}
	if got.UserID == "" {
		got.UserID = env.Data.Session.UserID
	}
	rc.mu.Lock()
	rc.all = append(rc.all, got)
	if !rc.seen[got.ID] {
		rc.seen[got.ID] = true
		rc.apply = append(rc.apply, got)
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) applied() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.apply...)
}

// eventually bounds the wait for deliveries that must happen: retries and
// back-offs run on the real clock, which a starved CPU stretches, so the
// bound is generous and a passing test waits no longer for it.
const eventually = time.Minute

// waitApplied waits until the receiver has applied at least n events.
func (rc *receiver) waitApplied(t testing.TB, n int) []received {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for time.Now().Before(deadline) {
		if a := rc.applied(); len(a) >= n {
			return a
		}
		time.Sleep(20 * time.Millisecond)
	}
	a := rc.applied()
	t.Fatalf("the receiver applied %d events within %s, want %d", len(a), eventually, n)
	return nil
}

// seqEvent is a test event of user with data.seq.
func seqEvent(user string, seq int) Event {
	b := Builder{Realm: "test"}
	return b.build("test.seq", user, struct {
		User UserData `json:"user"`
		Seq  int      `json:"seq"`
	}{UserData{ID: user}, seq})
}

// checkOrder fails unless each user's applied events come in seq order
// with none missing (1..n).
func checkOrder(t testing.TB, got []received, perUser map[string]int) {
	t.Helper()
	next := map[string]int{}
	for _, r := range got {
		next[r.UserID]++
		if r.Seq != next[r.UserID] {
			t.Fatalf("user %s: got seq %d, want %d (order broken)", r.UserID, r.Seq, next[r.UserID])
		}
	}
	for u, n := range perUser {
		if next[u] != n {
			t.Fatalf("user %s: %d events applied, want %d", u, next[u], n)
		}
	}
}
