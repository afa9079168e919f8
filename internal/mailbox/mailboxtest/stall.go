package mailboxtest

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync"
)

// stallListener hands out connections that can stop sending half-way
// through a message body literal (see IMAPOptions.StallMidLiteral).
type stallListener struct {
	net.Listener
	stall func(user string) bool
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, stall: l.stall, closed: make(chan struct{}), left: -1}, nil
}

// stallConn watches what the server writes for the start of a FETCH
// BODY[] literal ("BODY[] {N}\r\n"). When the stall function says so for
// the session's user, it lets the first half of the literal through and
// then sends nothing more, holding the connection open, until the
// connection is closed: a server hung mid-message, which only the
// client's command deadline can end.
//
// It sits above TLS (it wraps the TLS listener's connections), so it sees
// the protocol in clear. Only the server's connection goroutine writes.
type stallConn struct {
	net.Conn
	stall     func(user string) bool
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	user string // the logged-in user; "" before login

	// Writer-side state.
	tail []byte // the last bytes written, to find a literal's start across writes
	left int    // literal bytes still let through before the stall; -1 when none is armed
}

// bodyLiteral matches the end of the line that starts a BODY[] literal.
var bodyLiteral = regexp.MustCompile(`BODY\[\] \{(\d+)\}\r\n$`)

const stallTail = 64

func (c *stallConn) setUser(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.user = user
}

func (c *stallConn) loggedIn() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

func (c *stallConn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case c.left == 0:
			c.hang()
			return n, net.ErrClosed
		case c.left > 0:
			w, err := c.Conn.Write(p[n : n+min(c.left, len(p)-n)])
			n += w
			c.left -= w
			if err != nil {
				return n, err
			}
		default:
			end, size := c.findLiteral(p[n:])
			if end < 0 {
				w, err := c.Conn.Write(p[n:])
				return n + w, err
			}
			w, err := c.Conn.Write(p[n : n+end])
			n += w
			if err != nil {
				return n, err
			}
			c.left = size / 2
		}
	}
	return n, nil
}

// hang sends nothing more until the client hangs up or the connection is
// closed. The server's goroutine for this connection is stuck in Write, so
// nothing else reads from the client: hang reads (and drops) what it sends
// to notice it leave, so the server then lets go of what it holds, such as
// the memory server's mailbox lock, as a real server ends a session whose
// client has gone.
func (c *stallConn) hang() {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, c.Conn)
	}()
	select {
	case <-gone:
	case <-c.closed:
	}
	_ = c.Close()
}

// findLiteral returns the index just past the "BODY[] {N}\r\n" in b after
// which the stall function wants this literal stalled, and N; -1 when
// there is none.
func (c *stallConn) findLiteral(b []byte) (end int, size int) {
	user := c.loggedIn()
	if user == "" {
		return -1, 0
	}
	for i, ch := range b {
		c.tail = append(c.tail, ch)
		if len(c.tail) > stallTail {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-stallTail:]...)
		}
		if ch != '\n' || !bytes.HasSuffix(c.tail, []byte("}\r\n")) {
			continue
		}
		m := bodyLiteral.FindSubmatch(c.tail)
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(string(m[1]))
		if err != nil || n < 2 {
			continue
		}
		c.tail = c.tail[:0]
		if c.stall(user) {
			return i + 1, n
		}
	}
	return -1, 0
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
