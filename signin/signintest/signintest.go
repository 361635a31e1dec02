// Package signintest is the test harness of the sign-in packages (signin,
// account): a site on loopback that answers who is signed in, browsers
// that keep cookies, a real OpenID Provider with GitHub's API faked over
// it, an SMTP receiver and the mails it keeps, and both session stores to
// run on. It imports neither package, so both test with it.
package signintest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/internal/testclock"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Store is either session store.
type Store interface {
	session.Store
	session.UserStore
	session.Limiter
	session.Banner
	session.Devices
	session.AccountSecretSetter
	session.SecondFactors
}

// ChangeLog is a user store that records what a site announces
// (session.ChangeRecorder: user.updated's changes), as the events store
// does.
type ChangeLog struct {
	Store
	mu  sync.Mutex
	got []string
}

// UserChanged implements session.ChangeRecorder.
func (l *ChangeLog) UserChanged(_ context.Context, _ string, changes ...session.UserChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range changes {
		l.got = append(l.got, strings.TrimSuffix(c.Kind+":"+c.Provider, ":"))
	}
}

// Take returns what was announced since the last Take, "<kind>[:<provider>]"
// each, space-separated.
func (l *ChangeLog) Take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.got, " ")
	l.got = nil
	return s
}

// StoreMaker builds a store on the test's clock; nil is the in-process one.
type StoreMaker func(t *testing.T, opts session.Options) Store

var redisPrefixes atomic.Int64

// EachStore runs the test on the in-process store and on a real
// redis-server.
func EachStore(t *testing.T, run func(t *testing.T, mk StoreMaker)) {
	t.Run("memory", func(t *testing.T) { run(t, nil) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.StartServer(t)
		run(t, func(t *testing.T, opts session.Options) Store {
			s, err := session.NewRedisStore(session.RedisConfig{URL: srv.URL(), KeyPrefix: fmt.Sprintf("signin%d:", redisPrefixes.Add(1))}, opts)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

// SessionCookie is the test site's session cookie.
const SessionCookie = "sess"

// Host keeps sessions in a cookie over the store, as a real server would;
// it is the signin.Host of the tests but for StartSession, which each
// package wraps around Start.
type Host struct{ Store Store }

// SignedIn reports whether the request carries a live session.
func (h *Host) SignedIn(r *http.Request) (bool, error) {
	sess, err := h.Session(r)
	return sess != nil, err
}

// Session returns the request's live session, or nil.
func (h *Host) Session(r *http.Request) (*session.Session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, nil
	}
	sess, err := h.Store.Lookup(r.Context(), c.Value)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	return sess, err
}

// SameOrigin reads Sec-Fetch-Site, else Origin.
func (h *Host) SameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	return o == "" || o == "http://"+r.Host
}

// Start ends the request's session, if any, and starts one for user.
func (h *Host) Start(w http.ResponseWriter, r *http.Request, user *session.User, provider string) error {
	return h.StartFor(w, r, user, provider, 0)
}

// StartFor is Start with the session's lifetime capped at maxTTL (0: the
// store's).
func (h *Host) StartFor(w http.ResponseWriter, r *http.Request, user *session.User, provider string, maxTTL time.Duration) error {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := h.Store.Delete(r.Context(), c.Value); err != nil {
			return err
		}
	}
	tok, _, err := h.Store.Create(r.Context(), session.NewSession{UserID: user.ID, Provider: provider, Profile: user.Profile, UserAgent: r.Header.Get("User-Agent"), MaxTTL: maxTTL})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: tok, Path: "/", HttpOnly: true})
	return nil
}

// Whoami is what the site's other paths answer for a signed-in browser.
type Whoami struct {
	UserID        string `json:"user_id"`
	SessionID     string `json:"session_id"`
	Provider      string `json:"provider"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
}

// Site is a site on loopback: the sign-in packages' paths, and every other
// path answering who is signed in.
type Site struct {
	T      *testing.T
	Srv    *httptest.Server
	Origin string
	Store  Store
	Clock  *testclock.Clock
	Host   *Host
}

// NewSite makes the site on the store mk makes (nil: in-process), on a
// clock that moves only when told. Serve starts it.
func NewSite(t *testing.T, mk StoreMaker) *Site {
	t.Helper()
	s := &Site{T: t, Clock: testclock.New(time.Now().Truncate(time.Millisecond))}
	if mk == nil {
		s.Store = session.NewMemoryStore(session.Options{Now: s.Clock.Now})
	} else {
		s.Store = mk(t, session.Options{Now: s.Clock.Now})
	}
	t.Cleanup(func() { _ = s.Store.Close() })
	s.Host = &Host{Store: s.Store}
	s.Srv = httptest.NewUnstartedServer(nil)
	s.Origin = "http://" + s.Srv.Listener.Addr().String()
	return s
}

// Serve starts the site: handle answers the paths it knows (reporting
// whether it did); the rest answer Whoami, or 401 signed out.
func (s *Site) Serve(handle func(w http.ResponseWriter, r *http.Request) bool) {
	s.Srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handle(w, r) {
			return
		}
		sess, err := s.Host.Session(r)
		if err != nil || sess == nil {
			http.Error(w, "signed out", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(Whoami{UserID: sess.UserID, SessionID: sess.ID, Provider: sess.Provider,
			Email: sess.Profile.Email, EmailVerified: sess.Profile.EmailVerified, Name: sess.Profile.Name})
	})
	s.Srv.Start()
	s.T.Cleanup(s.Srv.Close)
}

// ReasonLog is a session store that records the revoke reason of every
// DeleteUser call.
type ReasonLog struct {
	session.Store
	mu      sync.Mutex
	reasons []string
}

// DeleteUser records the reason and ends the sessions.
func (l *ReasonLog) DeleteUser(ctx context.Context, userID, exceptSessionID string) (int, error) {
	l.mu.Lock()
	l.reasons = append(l.reasons, session.RevokeReason(ctx))
	l.mu.Unlock()
	return l.Store.DeleteUser(ctx, userID, exceptSessionID)
}

// Take returns the reasons since the last Take, joined by commas.
func (l *ReasonLog) Take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := strings.Join(l.reasons, ",")
	l.reasons = nil
	return r
}
