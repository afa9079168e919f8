package mailbox

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// pop3ReadBuffer is the size of the reader's buffer. Longer lines are
// still read whole (see readBlock); a larger buffer only means fewer
// pieces.
const pop3ReadBuffer = 64 << 10

// pop3Session is a Session over POP3 (RFC 1939) with CAPA (RFC 2449), STLS
// (RFC 2595) and SASL AUTH (RFC 5034). A maildrop has one folder and no
// flags: List returns every message, keyed by its UIDL, and the only
// action is delete, which the server carries out at QUIT. Our own client:
// see docs/decisions/0006-pop3-client.md.
//
// A session is used by one goroutine at a time, like a *sql.Tx.
type pop3Session struct {
	acct Account
	opts *Options
	// conn is the TCP connection (with TLS inside for implicit TLS). It
	// owns the deadlines, and closing it ends any call in flight.
	conn *deadlineConn
	// rw carries the commands: conn, or TLS over conn after STLS.
	rw net.Conn
	r  *bufio.Reader
	w  io.Writer
	// caps is the CAPA answer: capability name (upper case) → parameters.
	caps map[string]string
	// nums maps each listed key to its message number, which holds for
	// the whole session (RFC 1939 section 5); nil until listed.
	nums map[string]uint32
	// marked holds the message numbers DELE marked for deletion at QUIT.
	marked map[uint32]bool
	// ambiguous holds keys the server listed for more than one message:
	// a DELE by such a key could remove a message that was never stored.
	ambiguous map[string]bool
	// err is the failure that broke the connection: the stream is out of
	// step after it, so every later call fails with it.
	err    error
	closed bool
	// secure is set once the connection is encrypted: implicit TLS, or an
	// STLS upgrade whose handshake completed.
	secure bool
}

var _ Session = (*pop3Session)(nil)

func openPOP3(ctx context.Context, acct Account, opts *Options) (*pop3Session, error) {
	conn, err := dial(ctx, acct, opts)
	if err != nil {
		return nil, err
	}
	s := &pop3Session{acct: acct, opts: opts, conn: conn, marked: map[uint32]bool{}, secure: acct.Security == TLS}
	s.attach(conn)
	if err := s.run(ctx, s.start); err != nil {
		_ = s.rw.Close()
		return nil, err
	}
	return s, nil
}

// start reads the greeting, upgrades with STLS when asked, reads the
// capabilities and logs in.
func (s *pop3Session) start() error {
	if _, err := s.status("greeting"); err != nil {
		if isPOP3Err(err) {
			// A server too busy to take us, e.g. "-ERR [SYS/TEMP] ...".
			return &NetError{Op: "POP3 greeting of " + s.acct.addr(), Err: err}
		}
		return err
	}
	if s.acct.Security == StartTLS {
		if err := s.startTLS(); err != nil {
			return err
		}
	}
	if err := s.capa(); err != nil {
		return err
	}
	return s.login()
}

// startTLS upgrades the connection (RFC 2595 section 4). A refused STLS
// ends the session: logging in without the TLS the account asks for would
// send the credentials in clear.
func (s *pop3Session) startTLS() error {
	if _, err := s.cmd("STLS"); err != nil {
		if isPOP3Err(err) {
			return fmt.Errorf("%s refused STLS, so the login is not sent in clear: %w", s.acct.addr(), err)
		}
		return err
	}
	if s.r.Buffered() > 0 {
		// Bytes that came before the handshake are not protected by it:
		// anyone on the path could have put them there (the STARTTLS
		// command injection of CVE-2011-0411, from the other side).
		return &NetError{Op: "STLS with " + s.acct.addr(), Err: errors.New("server sent data before the TLS handshake")}
	}
	tc := tls.Client(s.conn, s.opts.tlsConfig(s.acct.Host))
	// Bounded by the armed command deadline; run closes conn if ctx ends.
	if err := tc.Handshake(); err != nil {
		return tlsError(s.acct, err)
	}
	s.attach(tc)
	s.secure = true
	return nil
}

// capa reads the capabilities (RFC 2449 section 5). A server without CAPA
// answers -ERR and is taken as plain RFC 1939: no pipelining.
func (s *pop3Session) capa() error {
	s.caps = map[string]string{}
	if _, err := s.cmd("CAPA"); err != nil {
		if isPOP3Err(err) {
			return nil
		}
		return err
	}
	return s.lines("CAPA", func(line string) error {
		name, params, _ := strings.Cut(line, " ")
		s.caps[strings.ToUpper(name)] = params
		return nil
	})
}

// run executes fn as one bounded exchange: the command deadline is armed
// for its length, and ctx ending closes the connection so fn returns. A
// connection that failed is closed for good (see pop3Session.err).
func (s *pop3Session) run(ctx context.Context, fn func() error) error {
	if s.err != nil {
		return fmt.Errorf("POP3 session with %s ended earlier: %w", s.acct.addr(), s.err)
	}
	if s.closed {
		return fmt.Errorf("POP3 session with %s is closed", s.acct.addr())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.conn.arm()
	defer s.conn.disarm()
	stop := context.AfterFunc(ctx, func() { _ = s.conn.Close() })
	err := fn()
	if !stop() {
		err = fmt.Errorf("%s: %w", s.acct.addr(), ctx.Err())
		s.fail(err)
		return err
	}
	var ne *NetError
	if errors.As(err, &ne) {
		s.fail(err)
	}
	return err
}

// fail closes a connection whose stream can no longer be trusted: a reply
// may be half read, or the server may have hung up.
func (s *pop3Session) fail(err error) {
	if s.err == nil {
		s.err = err
		_ = s.conn.Close()
	}
}

// Close sends QUIT, which is when the server deletes what DELE marked
// (RFC 1939 section 6), and closes the connection. It returns an error
// when QUIT did not succeed: the marked messages are then still on the
// server, and a later Complete listing will show them.
// Abort closes the connection without QUIT: the server leaves the
// maildrop as it was (RFC 1939 section 6), deletions and all.
func (s *pop3Session) Abort() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.rw.Close()
}

func (s *pop3Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	defer func() { _ = s.rw.Close() }()
	if s.err != nil {
		return fmt.Errorf("POP3 QUIT not sent, so nothing marked was deleted: %w", s.err)
	}
	s.conn.arm() // bounds QUIT and the TLS close_notify
	if _, err := s.cmd("QUIT"); err != nil {
		return fmt.Errorf("messages marked for deletion may still be on the server: %w", err)
	}
	return nil
}
