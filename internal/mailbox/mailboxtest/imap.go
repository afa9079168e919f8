package mailboxtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

// TokenChecker reports whether token is a valid access token for user.
type TokenChecker func(user, token string) bool

// IMAPOptions configure an IMAPServer.
type IMAPOptions struct {
	// Security: "tls" (implicit, the default), "starttls" or "plain".
	Security string
	// CheckToken validates XOAUTH2 logins; nil refuses them all.
	CheckToken TokenChecker
	// Debug receives the server's protocol trace.
	Debug io.Writer
	// SessionValid, when set, is asked before every FETCH of an XOAUTH2
	// session whether its access token is still good. When it is not, the
	// server does what Exchange Online does when a token expires mid
	// session: "* BYE Session invalidated - AccessTokenExpired", and the
	// connection is closed.
	SessionValid TokenChecker
	// NoMove makes the server an IMAP4rev1 one without MOVE (RFC 6851), as
	// some older servers are, so clients must COPY, flag and expunge.
	NoMove bool
	// StallMidLiteral, when set, is asked each time a FETCH response is
	// about to send a BODY[] literal to a session of user. When it says
	// true, the server sends the first half of the message and then
	// nothing more, keeping the connection open, as a hung server does;
	// only the client's timeout ends the wait. Security must be "tls" or
	// "plain" (the fault sits above TLS, which STARTTLS would bypass).
	StallMidLiteral func(user string) bool
	// Cert is the certificate to serve; nil makes a fresh one (NewCert).
	Cert *Cert
	// MaxTLSVersion, when set, makes a legacy server that speaks TLS 1.0
	// up to this version only (e.g. tls.VersionTLS11).
	MaxTLSVersion uint16
}

// IMAPServer is an in-process IMAP4rev2 server holding mail in memory.
type IMAPServer struct {
	// Addr is host:port to connect to.
	Addr string
	// Cert is the server's certificate; trust Cert.Pool to connect.
	Cert *Cert

	opts   IMAPOptions
	mem    *imapmemserver.Server
	srv    *imapserver.Server
	ln     net.Listener
	mu     sync.Mutex
	users  map[string]*imapmemserver.User
	logins atomic.Int64
	conns  atomic.Int64
	wg     sync.WaitGroup
	rec    recorder
}

// StartIMAP listens on 127.0.0.1 on a free port and serves until Close.
func StartIMAP(opts IMAPOptions) (*IMAPServer, error) {
	cert, err := certOf(opts.Cert)
	if err != nil {
		return nil, err
	}
	s := &IMAPServer{Cert: cert, opts: opts, mem: imapmemserver.New(), users: map[string]*imapmemserver.User{}}
	tlsCfg := serverTLS(cert, opts.MaxTLSVersion)
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}
	if opts.NoMove {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}
	}
	if opts.StallMidLiteral != nil && opts.Security == "starttls" {
		return nil, errors.New("StallMidLiteral needs Security tls or plain")
	}
	srvOpts := &imapserver.Options{
		NewSession: s.newSession,
		Caps:       caps,
		// With StallMidLiteral, implicit-TLS connections reach the server
		// wrapped, so it cannot see that they are TLS: allow logins on them.
		InsecureAuth: opts.Security == "plain" || opts.StallMidLiteral != nil,
		DebugWriter:  opts.Debug,
		// Clients hanging up mid-command are normal in fault tests; keep
		// the server quiet about them.
		Logger: log.New(io.Discard, "", 0),
	}
	if opts.Security == "starttls" {
		srvOpts.TLSConfig = tlsCfg
	}
	s.srv = imapserver.New(srvOpts)
	if s.ln, err = listen(opts.Security, tlsCfg, &s.rec); err != nil {
		return nil, err
	}
	s.Addr = s.ln.Addr().String()
	serveLn := s.ln
	if opts.StallMidLiteral != nil {
		serveLn = &stallListener{Listener: s.ln, stall: opts.StallMidLiteral}
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = s.srv.Serve(serveLn) }()
	return s, nil
}

// certOf is cert, or a fresh one when it is nil.
func certOf(cert *Cert) (*Cert, error) {
	if cert != nil {
		return cert, nil
	}
	return NewCert()
}

// Host and Port split Addr.
func (s *IMAPServer) Host() string { h, _, _ := net.SplitHostPort(s.Addr); return h }

// Port is the port the server listens on.
func (s *IMAPServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and closes every connection.
func (s *IMAPServer) Close() error {
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

// Logins counts successful logins.
func (s *IMAPServer) Logins() int { return int(s.logins.Load()) }

// Received returns every byte clients sent, as it crossed the network
// (encrypted, where TLS was on).
func (s *IMAPServer) Received() []byte { return s.rec.bytes() }

// AddUser creates a user with an INBOX. password may be "" for users that
// only log in with XOAUTH2.
func (s *IMAPServer) AddUser(name, password string) {
	u := imapmemserver.NewUser(name, password)
	_ = u.Create("INBOX", nil)
	s.mem.AddUser(u)
	s.mu.Lock()
	s.users[name] = u
	s.mu.Unlock()
}

func (s *IMAPServer) user(name string) (*imapmemserver.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return nil, fmt.Errorf("no user %q", name)
	}
	return u, nil
}

// Deliver appends raw to a user's folder, creating the folder if needed,
// and returns the new message's UID.
func (s *IMAPServer) Deliver(user, folder string, raw []byte, flags ...imap.Flag) (imap.UID, error) {
	u, err := s.user(user)
	if err != nil {
		return 0, err
	}
	if _, err := u.Status(folder, &imap.StatusOptions{}); err != nil {
		if err := u.Create(folder, nil); err != nil {
			return 0, fmt.Errorf("create %q: %w", folder, err)
		}
	}
	data, err := u.Append(folder, literal(raw), &imap.AppendOptions{Flags: flags})
	if err != nil {
		return 0, fmt.Errorf("append to %q: %w", folder, err)
	}
	return data.UID, nil
}

// CreateFolder makes an empty folder.
func (s *IMAPServer) CreateFolder(user, folder string) error {
	u, err := s.user(user)
	if err != nil {
		return err
	}
	return u.Create(folder, nil)
}

type literalReader struct {
	*bytes.Reader
	size int64
}

func (l literalReader) Size() int64 { return l.size }

func literal(b []byte) imap.LiteralReader {
	return literalReader{Reader: bytes.NewReader(b), size: int64(len(b))}
}

// session is a connection's state: the memory server's user session, with
// logins checked here so XOAUTH2 can be offered.
type session struct {
	*imapmemserver.UserSession
	srv  *IMAPServer
	conn *imapserver.Conn
	// stall is the connection when StallMidLiteral is set, told the user
	// at login.
	stall *stallConn
	// user and token of an XOAUTH2 login, to notice its expiry.
	user, token string
}

var _ imapserver.SessionSASL = (*session)(nil)

func (s *IMAPServer) newSession(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	s.conns.Add(1)
	sess := &session{srv: s, conn: conn}
	sess.stall, _ = conn.NetConn().(*stallConn)
	return sess, nil, nil
}

// Fetch ends the session, as Exchange does, when its access token expired.
func (sess *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if valid := sess.srv.opts.SessionValid; valid != nil && sess.token != "" && !valid(sess.user, sess.token) {
		_ = sess.conn.Bye("Session invalidated - AccessTokenExpired")
		return errors.New("session invalidated")
	}
	return sess.UserSession.Fetch(w, numSet, options)
}

func (sess *session) Close() error {
	sess.srv.conns.Add(-1)
	if sess.UserSession == nil {
		return nil
	}
	return sess.UserSession.Close()
}

// OpenConns counts connections not yet closed, to catch leaks.
func (s *IMAPServer) OpenConns() int { return int(s.conns.Load()) }

func (sess *session) Login(username, password string) error {
	u, err := sess.srv.user(username)
	if err != nil || password == "" || u.Login(username, password) != nil {
		return imapserver.ErrAuthFailed
	}
	return sess.loggedIn(username, u)
}

func (sess *session) loggedIn(name string, u *imapmemserver.User) error {
	sess.UserSession = imapmemserver.NewUserSession(u)
	sess.srv.logins.Add(1)
	if sess.stall != nil {
		sess.stall.setUser(name)
	}
	return nil
}

func (sess *session) AuthenticateMechanisms() []string {
	return []string{"XOAUTH2", sasl.Plain}
}

func (sess *session) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case "XOAUTH2":
		return &xoauth2Server{check: sess.checkToken}, nil
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			return sess.Login(username, password)
		}), nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

func (sess *session) checkToken(user, token string) error {
	u, err := sess.srv.user(user)
	if err != nil || sess.srv.opts.CheckToken == nil || !sess.srv.opts.CheckToken(user, token) {
		return errors.New("invalid token")
	}
	sess.user, sess.token = user, token
	return sess.loggedIn(user, u)
}

// xoauth2Server is the server side of XOAUTH2 as Gmail and Exchange run
// it: a bad token gets a JSON error challenge, and after the client's empty
// answer the command fails with AUTHENTICATIONFAILED.
type xoauth2Server struct {
	check  func(user, token string) error
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, false, &imap.Error{
			Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed,
			Text: "AUTHENTICATE failed.",
		}
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	user, token, ok := parseXOAUTH2(resp)
	if ok && x.check(user, token) == nil {
		return nil, true, nil
	}
	x.failed = true
	return []byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"}`), false, nil
}

func parseXOAUTH2(resp []byte) (user, token string, ok bool) {
	var u, a string
	for _, field := range strings.Split(string(resp), "\x01") {
		if v, found := strings.CutPrefix(field, "user="); found {
			u = v
		}
		if v, found := strings.CutPrefix(field, "auth=Bearer "); found {
			a = v
		}
	}
	return u, a, u != "" && a != ""
}
