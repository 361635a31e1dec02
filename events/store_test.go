package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
)

type emitted struct {
	Type string `json:"type"`
	Data struct {
		User           UserData    `json:"user"`
		Session        SessionData `json:"session"`
		Reason         Reason      `json:"reason"`
		ReplacedUserID string      `json:"replacedUserId"`
		Banned         *bool       `json:"banned"`
	} `json:"data"`
}

func drain(t *testing.T, q *MemoryQueue) []emitted {
	t.Helper()
	es, err := q.Read(context.Background(), "", 1000, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]emitted, len(es))
	for i, e := range es {
		if err := json.Unmarshal(e.Body, &out[i]); err != nil {
			t.Fatal(err)
		}
		_ = q.Done(context.Background(), e)
	}
	return out
}

func summary(es []emitted) string {
	s := ""
	for _, e := range es {
		s += e.Type
		if e.Data.Reason != "" {
			s += "(" + string(e.Data.Reason) + ")"
		}
		s += " "
	}
	return s
}

func TestStoreEmits(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	mem := session.NewMemoryStore(session.Options{Realm: "r", SessionTTL: time.Hour, IdleTTL: time.Minute, Now: clock})
	t.Cleanup(func() { mem.Close() })
	q := NewMemoryQueue(0)
	st := NewStore(mem, "r", q, nil, nil)

	u, err := st.CreateUser(ctx, session.NewUser{Profile: session.Profile{Email: "a@example.com", EmailVerified: true}})
	if err != nil {
		t.Fatal(err)
	}
	u.Profile.Name = "Ann"
	if err := st.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	tok1, s1, _ := st.Create(WithReplacedUser(ctx, "guest1"), session.NewSession{UserID: u.ID, Provider: "password"})
	_, _, _ = st.Create(ctx, session.NewSession{UserID: u.ID})
	_, s3, _ := st.Create(ctx, session.NewSession{UserID: u.ID})
	tok4, s4, _ := st.Create(ctx, session.NewSession{UserID: u.ID})
	es := drain(t, q)
	if got := summary(es); got != "user.created user.updated session.created session.created session.created session.created " {
		t.Fatalf("events %q", got)
	}
	if es[0].Data.User.Email != "a@example.com" || !es[0].Data.User.EmailVerified || es[1].Data.User.Name != "Ann" {
		t.Fatalf("user data %+v %+v", es[0].Data.User, es[1].Data.User)
	}
	if es[2].Data.ReplacedUserID != "guest1" || es[2].Data.Session.ID != s1.ID || es[2].Data.Session.Provider != "password" || es[3].Data.ReplacedUserID != "" {
		t.Fatalf("session.created data %+v / %+v", es[2].Data, es[3].Data)
	}

	if err := st.Delete(WithReason(ctx, ReasonSignOut), tok1); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteByID(WithReason(ctx, ReasonPasswordChange), u.ID, s3.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := st.DeleteUser(WithReason(ctx, ReasonBan), u.ID, s4.ID); err != nil || n != 1 {
		t.Fatalf("DeleteUser = %d, %v", n, err)
	}
	if _, err := st.SetBanned(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	es = drain(t, q)
	if got := summary(es); got != "session.revoked(sign-out) session.revoked(password-change) session.revoked(ban) user.banned " {
		t.Fatalf("events %q", got)
	}
	if es[0].Data.Session.ID != s1.ID || es[0].Data.Session.UserID != u.ID || es[3].Data.Banned == nil || !*es[3].Data.Banned {
		t.Fatalf("data %+v", es)
	}

	// A lookup that finds the session past its idle expiry reports it.
	now = now.Add(2 * time.Minute)
	_, err = st.Lookup(ctx, tok4)
	if !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Lookup = %v", err)
	}
	// Deleting a session that is gone, or a user that is gone, says nothing.
	_ = st.Delete(ctx, tok1)
	if err := st.RemoveUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_ = st.RemoveUser(ctx, u.ID)
	es = drain(t, q)
	if got := summary(es); got != "session.revoked(expired-noticed) user.deleted " {
		t.Fatalf("events %q", got)
	}
	for _, e := range es {
		if fmt.Sprint(e.Data.User.ID, e.Data.Session.UserID) == " " {
			t.Fatalf("event without its user: %+v", e)
		}
	}
}

func TestDeadLettersHandler(t *testing.T) {
	q := NewMemoryQueue(3)
	for i := range 5 {
		ev := seqEvent("u", i)
		enqueueAll(t, q, ev)
		_ = q.Dead(context.Background(), Entry{Event: ev}, DeadLetter{ID: ev.ID, UserID: "u", Body: ev.Body, Attempts: i})
	}
	h := DeadLettersHandler(q)
	for _, tt := range []struct {
		method, query string
		status, n     int
	}{
		{"GET", "", 200, 3}, {"GET", "?limit=2", 200, 2}, {"GET", "?limit=0", 400, 0}, {"GET", "?limit=x", 400, 0}, {"POST", "", 405, 0},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/convex-auth/events/dead"+tt.query, nil))
		var got struct {
			Dead  []DeadLetter `json:"dead"`
			Error string       `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &got)
		if rec.Code != tt.status || len(got.Dead) != tt.n || (tt.status != 200 && got.Error == "") {
			t.Fatalf("%s %s: %d %s", tt.method, tt.query, rec.Code, rec.Body)
		}
		if tt.n > 0 && got.Dead[0].Attempts != 4 {
			t.Fatalf("newest first: got %+v", got.Dead[0])
		}
	}
}

func TestStorePurgeUserAndGuests(t *testing.T) {
	ctx := context.Background()
	mem := session.NewMemoryStore(session.Options{Realm: "r", SessionTTL: time.Hour, IdleTTL: time.Hour})
	t.Cleanup(func() { mem.Close() })
	q := NewMemoryQueue(0)
	st := NewStore(mem, "r", q, nil, nil)

	guest, err := st.CreateUser(ctx, session.NewUser{Anonymous: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, s1, _ := st.Create(ctx, session.NewSession{UserID: guest.ID})
	_, s2, _ := st.Create(ctx, session.NewSession{UserID: guest.ID})
	drained := drain(t, q)
	if len(drained) != 3 || !drained[0].Data.User.Anonymous {
		t.Fatalf("a guest's user.created says anonymous: %+v", drained)
	}

	// The reason callers give through the session package is the one sent.
	if _, err := st.DeleteUser(session.WithRevokeReason(ctx, session.ReasonReset), guest.ID, s2.ID); err != nil {
		t.Fatal(err)
	}
	if got := summary(drain(t, q)); got != "session.revoked(reset) " {
		t.Fatalf("events %q", got)
	}

	// Purging a user ends its sessions (user-deleted) and deletes it.
	if err := st.PurgeUser(ctx, guest.ID); err != nil {
		t.Fatal(err)
	}
	es := drain(t, q)
	if got := summary(es); got != "session.revoked(user-deleted) user.deleted " {
		t.Fatalf("events %q", got)
	}
	if es[0].Data.Session.ID != s2.ID || es[1].Data.User.ID != guest.ID || s1.ID == s2.ID {
		t.Fatalf("data %+v", es)
	}
	if err := st.PurgeUser(ctx, guest.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("purging a purged user = %v, want ErrNotFound", err)
	}
	if es := drain(t, q); len(es) != 0 {
		t.Fatalf("purging a purged user sent %q", summary(es))
	}
}

func TestStoreAnnouncesImportsOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	mem := session.NewMemoryStore(session.Options{Realm: "r"})
	t.Cleanup(func() { mem.Close() })
	q := NewMemoryQueue(0)
	st := NewStore(mem, "r", q, nil, nil)
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	in := session.ImportedUser{ID: "jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a", CreatedAt: created,
		Profile: session.Profile{Email: "ada@example.com", EmailVerified: true, Name: "Ada"}}

	// Without Events, and in a dry run, nothing is sent.
	if _, err := st.ImportUser(ctx, in, session.ImportOptions{Events: true, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ImportUser(ctx, in, session.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if es := drain(t, q); len(es) != 0 {
		t.Fatalf("events %q; want none without --events", summary(es))
	}
	// With Events: user.updated for a change, nothing when unchanged.
	in.Profile.Name = "Ada Lovelace"
	for range 2 {
		if _, err := st.ImportUser(ctx, in, session.ImportOptions{Events: true}); err != nil {
			t.Fatal(err)
		}
	}
	es := drain(t, q)
	if summary(es) != "user.updated " || !es[0].Data.User.Imported || es[0].Data.User.Name != "Ada Lovelace" {
		t.Fatalf("events %q %+v; want one user.updated marked imported", summary(es), es)
	}
	// A new user: user.created marked imported, with its original creation time.
	in.ID = "kX9vB2nQ7mLp4RtY8wZc3HdF6gJs1AeU"
	in.Profile.Email = "grace@example.com"
	if _, err := st.ImportUser(ctx, in, session.ImportOptions{Events: true}); err != nil {
		t.Fatal(err)
	}
	es = drain(t, q)
	if summary(es) != "user.created " {
		t.Fatalf("events %q", summary(es))
	}
	if u := es[0].Data.User; !u.Imported || u.ID != in.ID || u.Email != "grace@example.com" || u.CreatedAt != created.UnixMilli() {
		t.Fatalf("user.created data %+v", u)
	}
}

// TestStoreEmitsCapEvictions: a sign-in past max_sessions_per_user ends
// the least recently used session with session.revoked, reason limit,
// before session.created.
func TestStoreEmitsCapEvictions(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	mem := session.NewMemoryStore(session.Options{Realm: "r", MaxSessionsPerUser: 2, Now: func() time.Time { return now }})
	t.Cleanup(func() { mem.Close() })
	q := NewMemoryQueue(0)
	st := NewStore(mem, "r", q, nil, nil)
	_, first, _ := st.Create(ctx, session.NewSession{UserID: "u"})
	now = now.Add(time.Minute)
	_, _, _ = st.Create(ctx, session.NewSession{UserID: "u"})
	now = now.Add(time.Minute)
	_, _, _ = st.Create(ctx, session.NewSession{UserID: "u"})
	es := drain(t, q)
	if got := summary(es); got != "session.created session.created session.revoked(limit) session.created " {
		t.Fatalf("events %q", got)
	}
	if es[2].Data.Session.ID != first.ID || es[2].Data.Session.UserID != "u" {
		t.Fatalf("revoked %+v; want the first session", es[2].Data.Session)
	}
}

// TestStoreEmitsUserChanges: a change of how the user signs in is
// user.updated with the user as stored and what changed.
func TestStoreEmitsUserChanges(t *testing.T) {
	ctx := context.Background()
	mem := session.NewMemoryStore(session.Options{Realm: "r"})
	t.Cleanup(func() { mem.Close() })
	q := NewMemoryQueue(0)
	st := NewStore(mem, "r", q, nil, nil)
	u, err := st.CreateUser(ctx, session.NewUser{Profile: session.Profile{Email: "a@example.com", EmailVerified: true}})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, q)
	st.UserChanged(ctx, u.ID, session.UserChange{Kind: session.ChangePasswordReset},
		session.UserChange{Kind: session.ChangeMethodRemoved, Provider: "github"})
	es, err := q.Read(ctx, "", 10, time.Millisecond)
	if err != nil || len(es) != 1 {
		t.Fatalf("%d events, %v; want one", len(es), err)
	}
	var body struct {
		Type string `json:"type"`
		Data struct {
			User    UserData `json:"user"`
			Changes []Change `json:"changes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(es[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	want := []Change{{Kind: "password-reset"}, {Kind: "method-removed", Provider: "github"}}
	if body.Type != "user.updated" || body.Data.User.Email != "a@example.com" || fmt.Sprint(body.Data.Changes) != fmt.Sprint(want) {
		t.Fatalf("event %s %+v", body.Type, body.Data)
	}
}
