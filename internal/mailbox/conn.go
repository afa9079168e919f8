package mailbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
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
