package mailboxtest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// POP3Options configure a POP3Server.
type POP3Options struct {
	// Security: "tls" (implicit, the default), "starttls" (STLS offered,
	// and required before any login) or "plain".
	Security string
	// CheckToken validates XOAUTH2 logins; nil refuses them all.
	CheckToken TokenChecker
	// SessionValid, when set, is asked before every RETR of an XOAUTH2
	// session whether its access token is still good. When it is not, the
	// server answers "-ERR Session invalidated - AccessTokenExpired" and
	// hangs up, as Exchange does over IMAP.
	SessionValid TokenChecker
	// Pipelining advertises PIPELINING (RFC 2449 section 6.6).
	Pipelining bool
	// NoUIDL makes a server without UIDL (it is optional in RFC 1939).
	NoUIDL bool
	// DropMidRETR cuts every RETR off half-way and hangs up; see also
	// SetDropMidRETR.
	DropMidRETR bool
	// StallOn names a command (e.g. "RETR") the server reads and then
	// never answers, as a hung server would.
	StallOn string
	// Cert is the certificate to serve; nil makes a fresh one (NewCert).
	Cert *Cert
	// MaxTLSVersion, when set, makes a legacy server that speaks TLS 1.0
	// up to this version only (e.g. tls.VersionTLS11).
	MaxTLSVersion uint16
}

// POP3Server is an in-process POP3 server (RFC 1939 with CAPA, STLS, AUTH
// XOAUTH2 in Exchange's two-line form, USER/PASS and the RFC 2449/3206
// response codes) holding maildrops in memory. Like a real server it locks
// a maildrop for the length of a session and deletes what DELE marked only
// at QUIT.
type POP3Server struct {
	// Addr is host:port to connect to.
	Addr string
	// Cert is the server's certificate; trust Cert.Pool to connect.
	Cert *Cert

	opts     POP3Options
	tlsCfg   *tls.Config
	ln       net.Listener
	dropRETR atomic.Bool

	mu    sync.Mutex
	users map[string]*maildrop
	open  map[net.Conn]struct{}
	seq   int

	conns     atomic.Int64
	logins    atomic.Int64
	pipelined atomic.Int64
	wg        sync.WaitGroup
	rec       recorder
}

// maildrop is one user's mail; the server's mu guards it.
type maildrop struct {
	password string
	msgs     []pop3Message
	locked   bool
}

type pop3Message struct {
	uidl string
	raw  []byte
}

// StartPOP3 listens on 127.0.0.1 on a free port and serves until Close.
func StartPOP3(opts POP3Options) (*POP3Server, error) {
	cert, err := certOf(opts.Cert)
	if err != nil {
		return nil, err
	}
	s := &POP3Server{
		Cert: cert, opts: opts,
		tlsCfg: serverTLS(cert, opts.MaxTLSVersion),
		users:  map[string]*maildrop{}, open: map[net.Conn]struct{}{},
	}
	s.dropRETR.Store(opts.DropMidRETR)
	if s.ln, err = listen(opts.Security, s.tlsCfg, &s.rec); err != nil {
		return nil, err
	}
	s.Addr = s.ln.Addr().String()
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *POP3Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.open[c] = struct{}{}
		s.mu.Unlock()
		s.conns.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

// Host is the address the server listens on.
func (s *POP3Server) Host() string { h, _, _ := net.SplitHostPort(s.Addr); return h }

// Port is the port the server listens on.
func (s *POP3Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and closes every connection; sessions cut off
// this way delete nothing.
func (s *POP3Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// SetDropMidRETR turns the DropMidRETR fault on or off for the RETRs that
// follow.
func (s *POP3Server) SetDropMidRETR(on bool) { s.dropRETR.Store(on) }

// OpenConns counts connections not yet closed, to catch leaks.
func (s *POP3Server) OpenConns() int { return int(s.conns.Load()) }

// Logins counts successful logins.
func (s *POP3Server) Logins() int { return int(s.logins.Load()) }

// Received returns every byte clients sent, as it crossed the network
// (encrypted, where TLS was on).
func (s *POP3Server) Received() []byte { return s.rec.bytes() }

// Pipelined counts commands that arrived before the server had answered
// the one before: a client pipelining (RFC 2449 section 6.6).
func (s *POP3Server) Pipelined() int { return int(s.pipelined.Load()) }

// AddUser creates a user with an empty maildrop. password may be "" for
// users that only log in with XOAUTH2.
func (s *POP3Server) AddUser(name, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = &maildrop{password: password}
}

// Deliver appends raw to user's maildrop, byte for byte, and returns the
// new message's UIDL. A session already open does not see it (the
// maildrop is read at login, as real servers do).
func (s *POP3Server) Deliver(user string, raw []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.users[user]
	if d == nil {
		return "", fmt.Errorf("no user %q", user)
	}
	s.seq++
	// Printable, like Dovecot's "%08Xu%08Xv", with punctuation that must
	// survive as is.
	uidl := fmt.Sprintf("%08x.%d!", uint32(s.seq)*2654435761, s.seq)
	d.msgs = append(d.msgs, pop3Message{uidl: uidl, raw: append([]byte(nil), raw...)})
	return uidl, nil
}

// DeliverAs appends raw under a UIDL the test chooses, to play a server
// that reuses or repeats UIDLs (which RFC 1939 section 7 forbids).
func (s *POP3Server) DeliverAs(user, uidl string, raw []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.users[user]
	if d == nil {
		return fmt.Errorf("no user %q", user)
	}
	d.msgs = append(d.msgs, pop3Message{uidl: uidl, raw: append([]byte(nil), raw...)})
	return nil
}

// Messages returns the UIDLs of the messages in user's maildrop, oldest
// first: what a QUIT left there.
func (s *POP3Server) Messages(user string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.users[user]
	if d == nil {
		return nil
	}
	out := make([]string, len(d.msgs))
	for i, m := range d.msgs {
		out[i] = m.uidl
	}
	return out
}

// lock gives a session user's maildrop: a copy of its messages, which the
// session sees until it ends. It fails when another session holds it.
func (s *POP3Server) lock(user string) ([]pop3Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.users[user]
	if d == nil {
		return nil, errors.New("no such user")
	}
	if d.locked {
		return nil, errInUse
	}
	d.locked = true
	s.logins.Add(1)
	return append([]pop3Message(nil), d.msgs...), nil
}

var errInUse = errors.New("maildrop in use")

// unlock ends a session's hold on user's maildrop, first deleting the
// messages it marked when it ended with QUIT (RFC 1939 section 6).
func (s *POP3Server) unlock(user string, deleted map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.users[user]
	if d == nil {
		return
	}
	d.locked = false
	kept := d.msgs[:0]
	for _, m := range d.msgs {
		if !deleted[m.uidl] {
			kept = append(kept, m)
		}
	}
	d.msgs = kept
}
