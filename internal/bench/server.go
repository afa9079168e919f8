package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// mailServer is the server the scenario's mail sits on, behind the proxy.
type mailServer interface {
	// addUser makes a mailbox that logs in with XOAUTH2, or password.
	addUser(user, password string) error
	deliver(user string, raw []byte) error
	// backend is the address the proxy forwards to, and the TLS it speaks
	// there (nil: plain).
	backend() (addr string, tlsConfig *tls.Config)
	cert() *mailboxtest.Cert
	// describe names the server for the scenario line.
	describe() string
	// logText is the server's own log, if it keeps one.
	logText() string
	// warm brings the server to the state of one whose mail came in the
	// usual way, before it is measured.
	warm(ctx context.Context, users []string, passwords map[string]string) error
	close()
}

// tokenCheck accepts XOAUTH2 logins with an access token the token server
// issued for the user.
func tokenCheck(tokens *oauthtest.Server) mailboxtest.TokenChecker {
	return func(user, token string) bool {
		got, ok := tokens.AccessTokenUser(token)
		return ok && got == user
	}
}

// startMailServer starts the server opts.Server names. Its users' logins
// are checked against tokens; passwords, when given, allow password logins
// too (the Dovecot one, for fetchmail).
func startMailServer(opts Options, tokens *oauthtest.Server, passwords map[string]string) (mailServer, error) {
	switch opts.Server {
	case ServerMemory:
		if opts.Protocol == ProtocolPOP3 {
			// Like Dovecot, the server advertises PIPELINING.
			s, err := mailboxtest.StartPOP3(mailboxtest.POP3Options{Security: "plain", CheckToken: tokenCheck(tokens), Pipelining: true})
			if err != nil {
				return nil, err
			}
			return memPOP3{s}, nil
		}
		s, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{Security: "plain", CheckToken: tokenCheck(tokens)})
		if err != nil {
			return nil, err
		}
		return memIMAP{s}, nil
	case ServerDovecot:
		introspect := httptest.NewServer(mailboxtest.IntrospectionHandler(tokens.AccessTokenUser))
		d, err := mailboxtest.StartDovecot(mailboxtest.DovecotOptions{IntrospectionURL: introspect.URL, Passwords: passwords})
		if err != nil {
			introspect.Close()
			if errors.Is(err, mailboxtest.ErrNoDovecot) {
				return nil, fmt.Errorf("%w; or use --server memory", err)
			}
			return nil, err
		}
		return &dovecot{d: d, introspect: introspect, protocol: opts.Protocol}, nil
	}
	return nil, fmt.Errorf("unknown server %q", opts.Server)
}

// memIMAP is the in-process IMAP server. It speaks plain IMAP to the
// proxy, which is the TLS server the fetcher talks to.
type memIMAP struct{ s *mailboxtest.IMAPServer }

func (m memIMAP) addUser(user, password string) error { m.s.AddUser(user, password); return nil }
func (m memIMAP) deliver(user string, raw []byte) error {
	_, err := m.s.Deliver(user, "INBOX", raw)
	return err
}
func (m memIMAP) backend() (string, *tls.Config)                          { return m.s.Addr, nil }
func (m memIMAP) cert() *mailboxtest.Cert                                 { return m.s.Cert }
func (m memIMAP) describe() string                                        { return "memory (in-process IMAP server)" }
func (m memIMAP) logText() string                                         { return "" }
func (m memIMAP) close()                                                  { _ = m.s.Close() }
func (m memIMAP) warm(context.Context, []string, map[string]string) error { return nil }

// memPOP3 is the in-process POP3 server, plain behind the proxy.
type memPOP3 struct{ s *mailboxtest.POP3Server }

func (m memPOP3) addUser(user, password string) error { m.s.AddUser(user, password); return nil }
func (m memPOP3) deliver(user string, raw []byte) error {
	_, err := m.s.Deliver(user, raw)
	return err
}
func (m memPOP3) backend() (string, *tls.Config)                          { return m.s.Addr, nil }
func (m memPOP3) cert() *mailboxtest.Cert                                 { return m.s.Cert }
func (m memPOP3) describe() string                                        { return "memory (in-process POP3 server)" }
func (m memPOP3) logText() string                                         { return "" }
func (m memPOP3) close()                                                  { _ = m.s.Close() }
func (m memPOP3) warm(context.Context, []string, map[string]string) error { return nil }

// dovecot is a real Dovecot reading Maildirs. The proxy talks to its
// implicit-TLS port (imaps or pop3s), trusting its certificate, and shows
// clients the same certificate.
type dovecot struct {
	d          *mailboxtest.Dovecot
	introspect *httptest.Server
	protocol   string
}

func (d *dovecot) addUser(string, string) error { return nil } // the passwd file is written at start
func (d *dovecot) deliver(user string, raw []byte) error {
	return d.d.Deliver(user, raw)
}

func (d *dovecot) backend() (string, *tls.Config) {
	port := "imaps"
	if d.protocol == ProtocolPOP3 {
		port = "pop3s"
	}
	return d.d.Addr(port), &tls.Config{RootCAs: d.d.Cert.Pool, ServerName: "127.0.0.1"}
}
func (d *dovecot) cert() *mailboxtest.Cert { return d.d.Cert }
func (d *dovecot) describe() string {
	return "dovecot (" + mailboxtest.DovecotBinary + ", Maildir)"
}
func (d *dovecot) logText() string { return d.d.Log() }
func (d *dovecot) close() {
	_ = d.d.Close()
	d.introspect.Close()
}

// warm logs in to every mailbox once, straight to Dovecot (not through the
// proxy), selects INBOX and asks for every message's size. Messages
// dropped into a Maildir's new/ are unknown to Dovecot until a session
// looks: it then moves them to cur/, gives them UIDs, indexes them and
// reads each file for its size. A delivery agent would have done that as
// the mail came; without this the first client (the fetcher's first pass)
// would pay for it and the next (fetchmail) would not.
func (d *dovecot) warm(ctx context.Context, users []string, passwords map[string]string) error {
	for _, u := range users {
		if err := d.warmOne(ctx, u, passwords[u]); err != nil {
			return fmt.Errorf("index %s's mailbox: %w", u, err)
		}
	}
	return nil
}

func (d *dovecot) warmOne(ctx context.Context, user, password string) error {
	dialer := &tls.Dialer{Config: &tls.Config{RootCAs: d.d.Cert.Pool, ServerName: "127.0.0.1"}}
	c, err := dialer.DialContext(ctx, "tcp", d.d.Addr("imaps"))
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	// Pipelined: IMAP allows it, and Dovecot answers in order.
	_, err = fmt.Fprintf(c, "a LOGIN %s %s\r\nb SELECT INBOX\r\nc FETCH 1:* (RFC822.SIZE)\r\nd LOGOUT\r\n",
		strconv.Quote(user), strconv.Quote(password))
	if err != nil {
		return err
	}
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !bytes.Contains(out, []byte("\r\nd OK")) {
		return err
	}
	if !bytes.Contains(out, []byte("\r\na OK")) || !bytes.Contains(out, []byte("\r\nb OK")) {
		return fmt.Errorf("dovecot refused the login or the folder: %.300q", out)
	}
	return nil
}
