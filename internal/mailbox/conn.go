package mailbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
)

// deadlineConn bounds every command. While a command is in flight
// ("armed") each read or write must make progress within timeout: the
// deadline moves forward with every byte, so a 25 MB literal on a slow link
// finishes while a server that stalls mid-literal fails after timeout. While
// disarmed (between commands, e.g. while the caller writes to its database)
// there is no deadline, because the IMAP client keeps a read pending in the
// background at all times.
type deadlineConn struct {
	net.Conn
	timeout time.Duration

	mu    sync.Mutex
	armed bool
	// tail keeps the last bytes read, so that when the server hangs up the
	// reason it gave ("* BYE …") can be reported: go-imap drops it.
	tail []byte
}

const tailSize = 512

func newDeadlineConn(c net.Conn, timeout time.Duration) *deadlineConn {
	return &deadlineConn{Conn: c, timeout: timeout}
}

func (c *deadlineConn) arm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = true
	_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
}

func (c *deadlineConn) disarm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = false
	_ = c.Conn.SetDeadline(time.Time{})
}

func (c *deadlineConn) extend() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed {
		_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
	}
}

// SetDeadline, SetReadDeadline and SetWriteDeadline ignore their callers:
// go-imap sets a read deadline when a response starts and clears it when the
// response ends, which would wipe the command deadline and leave a client
// waiting forever on a server that never answers. deadlineConn alone owns
// the deadlines, through arm, disarm and extend.
func (c *deadlineConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is ignored; see SetDeadline.
func (c *deadlineConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is ignored; see SetDeadline.
func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }

func (c *deadlineConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.extend()
		c.keepTail(p[:n])
	}
	return n, err
}

func (c *deadlineConn) keepTail(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(b) >= tailSize {
		c.tail = append(c.tail[:0], b[len(b)-tailSize:]...)
		return
	}
	c.tail = append(c.tail, b...)
	if over := len(c.tail) - tailSize; over > 0 {
		c.tail = append(c.tail[:0], c.tail[over:]...)
	}
}

// bye returns the text of the last untagged BYE the server sent, if it is
// among the last bytes read (RFC 9051 section 7.1.5).
func (c *deadlineConn) bye() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := bytes.LastIndex(c.tail, []byte("* BYE "))
	if i < 0 {
		return ""
	}
	line, _, _ := bytes.Cut(c.tail[i+len("* BYE "):], []byte("\r\n"))
	return string(line)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.extend()
	}
	return n, err
}

// dial connects to acct's server and, for TLS, completes the handshake,
// all within the dial timeout and ctx. The returned conn is armed: the
// caller's first command is the greeting.
func dial(ctx context.Context, acct Account, opts *Options) (*deadlineConn, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.dialTimeout())
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", acct.addr())
	if err != nil {
		return nil, &NetError{Op: "connect to " + acct.addr(), Err: err}
	}
	conn := raw
	if acct.Security == TLS {
		tc := tls.Client(raw, opts.tlsConfig(acct.Host))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, tlsError(acct, err)
		}
		conn = tc
	}
	dc := newDeadlineConn(conn, opts.commandTimeout())
	dc.arm()
	return dc, nil
}

// traceConn writes the protocol lines that cross conn to an IMAP trace.
// It sits above TLS, where the lines are IMAP rather than TLS records;
// imapclient's own DebugWriter is not used, as it tees both directions into
// one writer and so cannot tell a password from the server's "+".
type traceConn struct {
	net.Conn
	trace *imapTrace
}

// traced returns c with its lines going to trace, or c when there is no
// trace.
func traced(c net.Conn, trace *imapTrace) net.Conn {
	if trace == nil {
		return c
	}
	return &traceConn{Conn: c, trace: trace}
}

func (c *traceConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.trace.received(p[:n])
	}
	return n, err
}

// Write traces p before sending it: see imapTrace.sent.
func (c *traceConn) Write(p []byte) (int, error) {
	c.trace.sent(p)
	return c.Conn.Write(p)
}

// prefixConn reads prefix before what conn sends.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// maxSTARTTLSLines bounds the untagged lines a server may send before its
// reply to STARTTLS.
const maxSTARTTLSLines = 100

// startTLSGreeting stands in, for imapclient, for the greeting the server
// sent before STARTTLS: the session goes on as after a greeting, in the
// not authenticated state, and without capabilities, since those learnt
// before TLS must be discarded (RFC 9051 section 6.2.1).
const startTLSGreeting = "* OK TLS negotiation completed\r\n"

// startTLS reads the greeting over clear, the cleartext side of raw
// (traced), sends STARTTLS and completes the TLS handshake over raw
// (RFC 9051 section 6.2.1). It does what imapclient.NewStartTLS does, but
// leaves TLS under the conn the trace sees. A NO or BAD comes back as an
// *imap.Error.
func startTLS(clear, raw net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	// One byte at a time: nothing the server sends after its reply may be
	// read here, where it would bypass TLS.
	br := bufio.NewReaderSize(oneByteReader{clear}, 16)
	greeting, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	switch word, rest, _ := strings.Cut(strings.TrimPrefix(greeting, "* "), " "); strings.ToUpper(word) {
	case "OK":
	case "PREAUTH":
		// A session already logged in over clear cannot be upgraded
		// (RFC 9051 section 7.1.4): refused as go-imap does.
		return nil, errors.New("server sent PREAUTH on unencrypted connection")
	case "BYE":
		return nil, &NetError{Op: "read greeting", Err: errors.New("the server ended the session"), Bye: rest}
	default:
		return nil, fmt.Errorf("unexpected greeting %q", truncate(greeting, 100))
	}
	const tag = "T0"
	if _, err := io.WriteString(clear, tag+" STARTTLS\r\n"); err != nil {
		return nil, err
	}
	for range maxSTARTTLSLines {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(line, "* ") {
			continue
		}
		reply, ok := strings.CutPrefix(line, tag+" ")
		if !ok {
			return nil, fmt.Errorf("unexpected reply to STARTTLS %q", truncate(line, 100))
		}
		status, text, _ := strings.Cut(reply, " ")
		switch strings.ToUpper(status) {
		case "OK":
			tc := tls.Client(raw, cfg)
			if err := tc.Handshake(); err != nil {
				return nil, err
			}
			return tc, nil
		case "NO", "BAD":
			ie := &imap.Error{Type: imap.StatusResponseType(strings.ToUpper(status)), Text: text}
			if code, rest, ok := strings.Cut(strings.TrimPrefix(text, "["), "]"); ok && strings.HasPrefix(text, "[") {
				word, _, _ := strings.Cut(code, " ")
				ie.Code, ie.Text = imap.ResponseCode(strings.ToUpper(word)), strings.TrimPrefix(rest, " ")
			}
			return nil, ie
		default:
			return nil, fmt.Errorf("unexpected reply to STARTTLS %q", truncate(line, 100))
		}
	}
	return nil, fmt.Errorf("no reply to STARTTLS in %d lines", maxSTARTTLSLines)
}

// oneByteReader reads at most one byte per Read.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}
