package mailboxtest

import (
	"bytes"
	"io"
	"log"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions configure an SMTPServer.
type SMTPOptions struct {
	// Security: "tls" (implicit, port 465 style, the default), "starttls"
	// (offered, and AUTH offered only after it, port 587 style) or "plain"
	// (no STARTTLS; AUTH offered in clear).
	Security string
	// Cert is the certificate to serve; nil makes a fresh one (NewCert).
	Cert *Cert
	// CheckToken validates XOAUTH2 logins; nil refuses them all.
	CheckToken TokenChecker
	// Passwords for PLAIN and LOGIN logins, by user.
	Passwords map[string]string
	// Mechanisms are the SASL mechanisms offered; nil means XOAUTH2, PLAIN
	// and LOGIN, an empty non-nil slice none (no AUTH in EHLO at all).
	Mechanisms []string
	// NoInitialResponse refuses an XOAUTH2 initial response on the AUTH
	// line with "500 5.5.6 Authentication Exchange line is too long" (RFC
	// 4954 section 4), as Dovecot and Google do with a JWT: the response
	// must come on its own line after the 334.
	NoInitialResponse bool
	// Relay accepts MAIL without a login, as a relay that trusts its
	// clients does (a submission server's smarthost).
	Relay bool
	// SMTPUTF8 offers SMTPUTF8 (RFC 6531).
	SMTPUTF8 bool
	// Greeting, when set, replaces the 220 greeting (e.g. "554 5.3.2 No
	// service"); the connection is closed right after it.
	Greeting string
	// OnMail, OnRcpt and OnData script refusals: a non-nil result is the
	// reply. OnData sees the whole message, after its final dot.
	OnMail func(from string) *smtp.SMTPError
	OnRcpt func(to string) *smtp.SMTPError
	OnData func(msg SMTPMessage) *smtp.SMTPError
	// DataStarted is called when DATA's 354 has been sent, before the
	// message is read; a test may block in it to stall the server.
	DataStarted func()
	// Debug receives go-smtp's server trace.
	Debug io.Writer
}

// SMTPMessage is a message the server accepted (or, in OnData, is about
// to).
type SMTPMessage struct {
	// User is who logged in; "" on a relay without login.
	User string
	From string
	To   []string
	// Data is the message as received, dot-stuffing undone, CRLF kept.
	Data []byte
	// UTF8 reports MAIL's SMTPUTF8 parameter.
	UTF8 bool
}

// SMTPAuth records one AUTH exchange that reached a result.
type SMTPAuth struct {
	Mechanism string
	// InitialResponse reports a response on the AUTH line itself.
	InitialResponse bool
	OK              bool
}

// SMTPServer is an in-process SMTP submission server (RFC 5321, 6409)
// built on go-smtp's server: STARTTLS or implicit TLS, AUTH XOAUTH2 with
// Exchange's error challenge, PLAIN and LOGIN, scripted refusals, and a
// record of what it received. It is safe for concurrent use.
type SMTPServer struct {
	// Addr is host:port to connect to.
	Addr string
	// Cert is the server's certificate; trust Cert.Pool to connect.
	Cert *Cert

	opts SMTPOptions
	srv  *smtp.Server
	ln   net.Listener
	wg   sync.WaitGroup
	rec  recorder

	conns  atomic.Int64
	auths  atomic.Int64
	logins atomic.Int64

	mu       sync.Mutex
	messages []SMTPMessage
	authLog  []SMTPAuth
}

// StartSMTP listens on 127.0.0.1 on a free port and serves until Close.
func StartSMTP(opts SMTPOptions) (*SMTPServer, error) {
	cert, err := certOf(opts.Cert)
	if err != nil {
		return nil, err
	}
	s := &SMTPServer{Cert: cert, opts: opts}
	tlsCfg := serverTLS(cert, 0)
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "mx.fetcher.test"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	// A SASL response line may be 12288 octets (RFC 4954 section 4), and
	// an Exchange access token is several KB once base64-encoded.
	s.srv.MaxLineLength = 12288
	s.srv.EnableSMTPUTF8 = opts.SMTPUTF8
	s.srv.AllowInsecureAuth = opts.Security == "plain"
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.Debug = opts.Debug
	if opts.Security == "starttls" {
		s.srv.TLSConfig = tlsCfg
	}
	if s.ln, err = listen(opts.Security, tlsCfg, &s.rec); err != nil {
		return nil, err
	}
	s.Addr = s.ln.Addr().String()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = s.srv.Serve(smtpListener{Listener: s.ln, srv: s}) }()
	return s, nil
}

// Host is the address the server listens on.
func (s *SMTPServer) Host() string { h, _, _ := net.SplitHostPort(s.Addr); return h }

// Port is the port the server listens on.
func (s *SMTPServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and closes every connection.
func (s *SMTPServer) Close() error {
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

// Conns counts the connections accepted.
func (s *SMTPServer) Conns() int { return int(s.conns.Load()) }

// AuthAttempts counts AUTH commands for an offered mechanism.
func (s *SMTPServer) AuthAttempts() int { return int(s.auths.Load()) }

// Logins counts successful logins.
func (s *SMTPServer) Logins() int { return int(s.logins.Load()) }

// Received returns every byte clients sent, as it crossed the network
// (encrypted, where TLS was on).
func (s *SMTPServer) Received() []byte { return s.rec.bytes() }

// Messages returns the messages accepted so far, oldest first.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SMTPMessage, len(s.messages))
	for i, m := range s.messages {
		out[i] = SMTPMessage{User: m.User, From: m.From, To: slices.Clone(m.To), Data: bytes.Clone(m.Data), UTF8: m.UTF8}
	}
	return out
}

// AuthLog returns the AUTH exchanges that reached a result, oldest first.
func (s *SMTPServer) AuthLog() []SMTPAuth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.authLog)
}

func (s *SMTPServer) recordAuth(a SMTPAuth) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authLog = append(s.authLog, a)
	if a.OK {
		s.logins.Add(1)
	}
}

func (s *SMTPServer) recordMessage(m SMTPMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
}

// smtpListener counts connections and, with Options.Greeting, turns each
// away at the greeting.
type smtpListener struct {
	net.Listener
	srv *SMTPServer
}

func (l smtpListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.srv.conns.Add(1)
		if l.srv.opts.Greeting == "" {
			return c, nil
		}
		l.srv.wg.Add(1)
		go func() {
			defer l.srv.wg.Done()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c, l.srv.opts.Greeting+"\r\n")
			_ = c.Close()
		}()
	}
}

func (s *SMTPServer) newSession(*smtp.Conn) (smtp.Session, error) {
	return &smtpSession{srv: s}, nil
}

// Replies of real servers, for the refusals below.
var (
	errAuthUnsuccessful = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
	errBadCredentials   = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted"}
	errLineTooLong      = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 6}, Message: "Authentication Exchange line is too long"}
	errAuthRequired     = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
)

// smtpSession is one client's session.
type smtpSession struct {
	srv  *SMTPServer
	user string
	msg  SMTPMessage
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (s *smtpSession) AuthMechanisms() []string {
	if s.srv.opts.Mechanisms != nil {
		return s.srv.opts.Mechanisms
	}
	return []string{xoauth2, sasl.Plain, sasl.Login}
}

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	if !slices.Contains(s.AuthMechanisms(), mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	s.srv.auths.Add(1)
	var inner sasl.Server
	switch mech {
	case xoauth2:
		inner = &smtpXOAUTH2Server{check: s.srv.opts.CheckToken, strict: s.srv.opts.NoInitialResponse, login: s.loggedIn}
	case sasl.Plain:
		inner = sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return errBadCredentials
			}
			return s.checkPassword(user, pass)
		})
	default:
		inner = &loginServer{check: s.checkPassword}
	}
	return &authRecorder{Server: inner, mech: mech, srv: s.srv}, nil
}

func (s *smtpSession) loggedIn(user string) { s.user = user }

func (s *smtpSession) checkPassword(user, pass string) error {
	want, ok := s.srv.opts.Passwords[user]
	if !ok || pass == "" || pass != want {
		return errBadCredentials
	}
	s.user = user
	return nil
}

func (s *smtpSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.user == "" && !s.srv.opts.Relay {
		return errAuthRequired // RFC 4954 section 6
	}
	if f := s.srv.opts.OnMail; f != nil {
		if err := f(from); err != nil {
			return err
		}
	}
	s.msg = SMTPMessage{User: s.user, From: from, UTF8: opts != nil && opts.UTF8}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if f := s.srv.opts.OnRcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	if f := s.srv.opts.DataStarted; f != nil {
		f()
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.msg
	m.Data = data
	if f := s.srv.opts.OnData; f != nil {
		if err := f(m); err != nil {
			return err
		}
	}
	s.srv.recordMessage(m)
	return nil
}

func (s *smtpSession) Reset() { s.msg = SMTPMessage{} }

func (s *smtpSession) Logout() error { return nil }

// authRecorder notes, for AuthLog, whether the exchange began with an
// initial response and how it ended.
type authRecorder struct {
	sasl.Server
	mech  string
	srv   *SMTPServer
	calls int
	ir    bool
}

func (a *authRecorder) Next(resp []byte) ([]byte, bool, error) {
	if a.calls == 0 {
		a.ir = resp != nil
	}
	a.calls++
	challenge, done, err := a.Server.Next(resp)
	if done || err != nil {
		a.srv.recordAuth(SMTPAuth{Mechanism: a.mech, InitialResponse: a.ir, OK: done && err == nil})
	}
	return challenge, done, err
}

// xoauth2 is the mechanism's name.
const xoauth2 = "XOAUTH2"

// smtpXOAUTH2Server is the server side of XOAUTH2, which go-sasl lacks. A
// refused token gets Exchange's answer: a 334 with the JSON error
// challenge, then, after the client's empty response, 535 5.7.3.
type smtpXOAUTH2Server struct {
	check   TokenChecker
	strict  bool
	login   func(user string)
	started bool
	failed  bool
}

// smtpChallenge is the error challenge Exchange Online sends over SMTP.
var smtpChallenge = []byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`)

func (x *smtpXOAUTH2Server) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case x.failed:
		return nil, false, errAuthUnsuccessful
	case !x.started && resp == nil:
		// "AUTH XOAUTH2" alone: ask for the response with an empty 334.
		x.started = true
		return nil, false, nil
	case !x.started && x.strict:
		return nil, false, errLineTooLong
	}
	x.started = true
	user, token, ok := parseXOAUTH2(resp)
	if ok && x.check != nil && x.check(user, token) {
		x.login(user)
		return nil, true, nil
	}
	x.failed = true
	return smtpChallenge, false, nil
}

// loginServer is the server side of LOGIN (draft-murchison-sasl-login),
// which go-sasl lacks: "Username:", then "Password:". A user name may
// come as an initial response.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch {
	case l.step == 1 && resp == nil:
		return []byte("Username:"), false, nil
	case l.step == 1 || l.step == 2 && l.user == "":
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}
