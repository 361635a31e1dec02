// Package events sends the gateway's user and session events to the app,
// signed per Standard Webhooks, at least once, in order per user, from a
// queue that is a Redis stream (shared by instances, durable) or, with the
// in-process store, a list in memory. The wire format is
// docs/events.md's. No Caddy import: caddymodule only configures it.
package events

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// Event types.
const (
	TypeUserCreated    = "user.created"
	TypeUserUpdated    = "user.updated"
	TypeUserDeleted    = "user.deleted"
	TypeUserBanned     = "user.banned"
	TypeSessionCreated = "session.created"
	TypeSessionRevoked = "session.revoked"
)

// Reason says why a session ended (session.revoked's reason).
type Reason string

// Reasons of session.revoked: session's, typed.
const (
	ReasonSignOut        Reason = session.ReasonSignOut
	ReasonAdmin          Reason = session.ReasonAdmin
	ReasonReset          Reason = session.ReasonReset
	ReasonBan            Reason = session.ReasonBan
	ReasonPasswordChange Reason = session.ReasonPasswordChange
	ReasonUserDeleted    Reason = session.ReasonUserDeleted
	ReasonExpiredNoticed Reason = session.ReasonExpiredNoticed
	ReasonLimit          Reason = session.ReasonLimit
	ReasonEmailVerified  Reason = session.ReasonEmailVerified
	// ReasonSignIn: a sign-in replaced the browser's previous session. It
	// is reported as sign-out: the browser's old session ended by its own
	// action.
	ReasonSignIn = ReasonSignOut
)

// Event is one queued event. Body is the signed JSON; Key orders events
// (the user ID): events with the same key are delivered in order.
type Event struct {
	ID      string
	Key     string
	Body    []byte
	Created time.Time
	// TraceParent is the W3C traceparent of the request that caused the
	// event, if it was traced: the delivery's span links to it.
	TraceParent string
}

// idLen is the length of an event ID after "evt_": Crockford base32 of a
// 48-bit millisecond time and 80 random bits, like a ULID, so IDs sort by
// creation.
const idLen = 26

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a new event ID, "evt_" and 26 characters.
func NewID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:]) // never fails (crypto/rand, Go 1.24+)
	// 128 bits as 26 base32 digits, most significant first (the first
	// digit carries 3 bits).
	var out [idLen]byte
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	for i := idLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return "evt_" + string(out[:])
}

// The body's shapes (docs/events.md). Times are Unix milliseconds.
type envelope struct {
	Type      string `json:"type"`
	Timestamp int64  `json:"timestamp"`
	Realm     string `json:"realm"`
	Data      any    `json:"data"`
}

// UserData is the user of user.created and user.updated; user.deleted and
// user.banned carry the ID alone.
type UserData struct {
	ID            string `json:"id"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"emailVerified,omitempty"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
	Anonymous     bool   `json:"anonymous,omitempty"`
	CreatedAt     int64  `json:"createdAt,omitempty"`
	// Imported marks a user an import created or updated (users import
	// --events).
	Imported bool `json:"imported,omitempty"`
}

// SessionData is the session of session.created and session.revoked (the
// latter with ID and user ID only).
type SessionData struct {
	ID        string `json:"id"`
	UserID    string `json:"userId"`
	Provider  string `json:"provider,omitempty"`
	CreatedAt int64  `json:"createdAt,omitempty"`
}

type userBody struct {
	User UserData `json:"user"`
	// Changes say what changed of how the user signs in (user.updated
	// only); none for a profile filled in.
	Changes []Change `json:"changes,omitempty"`
}

// Change is one entry of user.updated's changes: a session.UserChange.
type Change struct {
	Kind     string `json:"kind"`
	Provider string `json:"provider,omitempty"`
}

type bannedBody struct {
	User   UserData `json:"user"`
	Banned bool     `json:"banned"`
}

type sessionCreatedBody struct {
	Session        SessionData `json:"session"`
	ReplacedUserID string      `json:"replacedUserId,omitempty"`
}

type sessionRevokedBody struct {
	Session SessionData `json:"session"`
	Reason  Reason      `json:"reason"`
}

// Builder makes the events of one realm.
type Builder struct {
	Realm string
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func (b Builder) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b Builder) build(typ, key string, data any) Event {
	now := b.now()
	body, err := json.Marshal(envelope{Type: typ, Timestamp: now.UnixMilli(), Realm: b.Realm, Data: data})
	if err != nil {
		// Only plain strings, bools and integers go in: cannot fail.
		panic(fmt.Sprintf("events: encoding %s: %v", typ, err))
	}
	return Event{ID: NewID(now), Key: key, Body: body, Created: now}
}

// UserOf is the event data of a stored user.
func UserOf(u *session.User) UserData {
	d := UserData{ID: u.ID, Email: u.Profile.Email, EmailVerified: u.Profile.EmailVerified,
		Name: u.Profile.Name, Picture: u.Profile.Picture, Anonymous: u.Anonymous}
	if !u.CreatedAt.IsZero() {
		d.CreatedAt = u.CreatedAt.UnixMilli()
	}
	return d
}

// UserCreated is user.created.
func (b Builder) UserCreated(u UserData) Event {
	return b.build(TypeUserCreated, u.ID, userBody{User: u})
}

// UserUpdated is user.updated; changes, if any, say what changed of how
// the user signs in.
func (b Builder) UserUpdated(u UserData, changes ...session.UserChange) Event {
	body := userBody{User: u}
	for _, c := range changes {
		body.Changes = append(body.Changes, Change{Kind: c.Kind, Provider: c.Provider})
	}
	return b.build(TypeUserUpdated, u.ID, body)
}

// UserDeleted is user.deleted.
func (b Builder) UserDeleted(userID string) Event {
	return b.build(TypeUserDeleted, userID, userBody{User: UserData{ID: userID}})
}

// UserBanned is user.banned; banned false is an unban.
func (b Builder) UserBanned(userID string, banned bool) Event {
	return b.build(TypeUserBanned, userID, bannedBody{UserData{ID: userID}, banned})
}

// SessionCreated is session.created. replacedUserID names the guest user
// whose sign-in as an existing user this session completes; empty
// otherwise.
func (b Builder) SessionCreated(s *session.Session, replacedUserID string) Event {
	return b.build(TypeSessionCreated, s.UserID, sessionCreatedBody{
		Session:        SessionData{ID: s.ID, UserID: s.UserID, Provider: s.Provider, CreatedAt: s.CreatedAt.UnixMilli()},
		ReplacedUserID: replacedUserID,
	})
}

// SessionRevoked is session.revoked.
func (b Builder) SessionRevoked(sessionID, userID string, reason Reason) Event {
	return b.build(TypeSessionRevoked, userID, sessionRevokedBody{SessionData{ID: sessionID, UserID: userID}, reason})
}
