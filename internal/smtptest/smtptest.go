// Package smtptest is an SMTP server for tests (emersion/go-smtp) on
// loopback that keeps every message it receives.
package smtptest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one received message.
type Mail struct {
	From string
	To   []string
	Data []byte
	Auth bool // the session authenticated
	TLS  bool // the session was over TLS
}

// Server receives mail until the test ends.
type Server struct {
	// Addr is host:port.
	Addr     string
	username string
	password string
	mu       sync.Mutex
	msgs     []Mail
	arrived  chan struct{}
}

// Start runs a server. With tlsConfig it offers STARTTLS; with a username
// it requires AUTH PLAIN with these credentials.
func Start(t testing.TB, tlsConfig *tls.Config, username, password string) *Server {
	t.Helper()
	s := &Server{username: username, password: password, arrived: make(chan struct{}, 1000)}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.TLSConfig = tlsConfig
	srv.AllowInsecureAuth = tlsConfig == nil
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Count is how many messages arrived.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Since returns the messages that arrived after the first n, oldest
// first.
func (s *Server) Since(n int) []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n >= len(s.msgs) {
		return nil
	}
	return append([]Mail(nil), s.msgs[n:]...)
}

// Last is the last message; the test fails if none arrived.
func (s *Server) Last(t testing.TB) Mail {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == 0 {
		t.Fatal("no mail arrived")
	}
	return s.msgs[len(s.msgs)-1]
}

// Next waits for the next message to arrive and returns the last one.
func (s *Server) Next(t testing.TB) Mail {
	t.Helper()
	select {
	case <-s.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no mail arrived within 10s")
	}
	return s.Last(t)
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, conn: c}, nil
}

type session struct {
	s    *Server
	conn *smtp.Conn
	m    Mail
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.username || password != ss.s.password {
			return errors.New("invalid credentials")
		}
		ss.m.Auth = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.username != "" && !ss.m.Auth {
		return smtp.ErrAuthRequired
	}
	ss.m.From = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.m.To = append(ss.m.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, ss.m.TLS = ss.conn.TLSConnectionState()
	ss.m.Data = data
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.m)
	ss.s.mu.Unlock()
	ss.s.arrived <- struct{}{}
	return nil
}

func (ss *session) Reset()        { ss.m = Mail{Auth: ss.m.Auth} }
func (ss *session) Logout() error { return nil }
