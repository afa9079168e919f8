package bench

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ProxyOptions configure a Proxy.
type ProxyOptions struct {
	// Target is the host:port connections are forwarded to.
	Target string
	// Delay is added to every round trip: half of it to each direction, as
	// network latency (not a bandwidth limit: every chunk is forwarded its
	// own half delay after it arrived, in order, while the next ones are
	// already on their way).
	Delay time.Duration
	// TLS, when set, makes the proxy the TLS server its clients talk to
	// (with the mail server's certificate), so that it sees the commands.
	// The delay is below TLS: handshakes take their round trips too.
	TLS *tls.Config
	// TargetTLS, when set, makes the proxy talk TLS to the target.
	TargetTLS *tls.Config
}

// ProxyStats are the proxy's counts since it started.
type ProxyStats struct {
	// Conns counts the connections clients opened (one per login, for
	// IMAP and POP3).
	Conns int64
	// Lines counts the CRLF-terminated lines clients sent, which for IMAP
	// and POP3 is the number of commands (and of SASL responses).
	Lines int64
	// Up and Down count the bytes clients sent and received (after TLS).
	Up, Down int64
}

// Sub is s minus an earlier snapshot.
func (s ProxyStats) Sub(before ProxyStats) ProxyStats {
	return ProxyStats{Conns: s.Conns - before.Conns, Lines: s.Lines - before.Lines, Up: s.Up - before.Up, Down: s.Down - before.Down}
}

// Proxy sits between the mail clients and the mail server on 127.0.0.1:
// it delays every round trip by ProxyOptions.Delay and counts the
// connections and the command lines clients send.
type Proxy struct {
	opts ProxyOptions
	ln   net.Listener

	conns, lines, up, down atomic.Int64

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartProxy listens on a free port of 127.0.0.1 until Close.
func StartProxy(opts ProxyOptions) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{opts: opts, ln: ln, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the port the proxy listens on.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Stats returns the counts so far.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{Conns: p.conns.Load(), Lines: p.lines.Load(), Up: p.up.Load(), Down: p.down.Load()}
}

// Settle waits until every connection has ended, at most timeout, and
// reports whether they did. A client that sends its last command (LOGOUT,
// QUIT) and exits without waiting for the answer has that command still
// on its way through the delay: Settle lets it arrive and be counted.
func (p *Proxy) Settle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		n := len(p.open)
		p.mu.Unlock()
		if n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close stops listening and cuts every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			_ = c.Close()
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.handle(c)
		}()
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.open, c)
}

// handle forwards one client connection until either side ends it.
func (p *Proxy) handle(raw net.Conn) {
	client := raw
	if half := p.opts.Delay / 2; half > 0 {
		client = newDelayConn(raw, half)
	}
	defer func() { _ = client.Close() }()
	if p.opts.TLS != nil {
		tc := tls.Server(client, p.opts.TLS)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return
		}
		client = tc
	}
	server, err := net.DialTimeout("tcp", p.opts.Target, 10*time.Second)
	if err != nil {
		return
	}
	if p.opts.TargetTLS != nil {
		server = tls.Client(server, p.opts.TargetTLS)
	}
	defer func() { _ = server.Close() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, _ := io.Copy(client, server)
		p.down.Add(n)
		// The server hung up (after BYE or +OK at QUIT): so does the
		// client's side, once what is on its way has arrived.
		_ = client.Close()
	}()
	n, _ := io.Copy(server, &lineCounter{r: client, lines: &p.lines})
	_ = server.Close()
	<-done
	// Counted once both directions are done, so a reader that sees the
	// bytes sent also sees those received.
	p.up.Add(n)
}

// lineCounter counts the CRLF-terminated lines read through it.
type lineCounter struct {
	r      io.Reader
	lines  *atomic.Int64
	lastCR bool
}

func (l *lineCounter) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	var lines int64
	for _, c := range b[:n] {
		if c == '\n' && l.lastCR {
			lines++
		}
		l.lastCR = c == '\r'
	}
	if lines > 0 {
		l.lines.Add(lines)
	}
	return n, err
}

// delayConn delays what crosses a connection by half in each direction.
// A goroutine reads the network as fast as data comes, stamping each
// chunk with the time it may be handed on; Read waits for that time. Write
// queues a copy stamped the same way, which another goroutine writes when
// due. Chunks keep their order and each waits only its own delay.
type delayConn struct {
	net.Conn
	half time.Duration

	in   chan chunk
	cur  []byte
	rerr error

	mu     sync.Mutex // guards out and closed against Close
	out    chan chunk
	closed bool
	werr   atomic.Pointer[error]
	done   chan struct{}
	once   sync.Once
}

type chunk struct {
	b   []byte
	due time.Time
	err error
}

// chunkSize is the most one read off the network holds.
const chunkSize = 32 << 10

func newDelayConn(c net.Conn, half time.Duration) *delayConn {
	d := &delayConn{Conn: c, half: half, in: make(chan chunk, 256), out: make(chan chunk, 1024), done: make(chan struct{})}
	go d.reader()
	go d.writer()
	return d
}

func (d *delayConn) reader() {
	for {
		buf := make([]byte, chunkSize)
		n, err := d.Conn.Read(buf)
		due := time.Now().Add(d.half)
		if n > 0 {
			select {
			case d.in <- chunk{b: buf[:n], due: due}:
			case <-d.done:
				return
			}
		}
		if err != nil {
			select {
			case d.in <- chunk{err: err, due: due}:
			case <-d.done:
			}
			return
		}
	}
}

// Read returns the data that arrived at least half ago.
func (d *delayConn) Read(b []byte) (int, error) {
	if len(d.cur) == 0 {
		if d.rerr != nil {
			return 0, d.rerr
		}
		var c chunk
		select {
		case c = <-d.in:
		case <-d.done:
			return 0, net.ErrClosed
		}
		if !wait(c.due, d.done) {
			return 0, net.ErrClosed
		}
		if c.err != nil {
			d.rerr = c.err
			return 0, c.err
		}
		d.cur = c.b
	}
	n := copy(b, d.cur)
	d.cur = d.cur[n:]
	return n, nil
}

// Write queues a copy of b, to be sent half from now.
func (d *delayConn) Write(b []byte) (int, error) {
	if err := d.werr.Load(); err != nil {
		return 0, *err
	}
	c := chunk{b: append([]byte(nil), b...), due: time.Now().Add(d.half)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, net.ErrClosed
	}
	d.out <- c
	return len(b), nil
}

func (d *delayConn) writer() {
	failed := false
	for c := range d.out {
		if failed || !wait(c.due, nil) {
			continue
		}
		_ = d.Conn.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := d.Conn.Write(c.b); err != nil {
			d.werr.Store(&err)
			failed = true
		}
	}
	// Closed, and everything written before was sent: close for real.
	_ = d.Conn.Close()
}

// Close sends what is queued, when due, then closes the connection; data
// not yet read is dropped.
func (d *delayConn) Close() error {
	d.once.Do(func() {
		close(d.done)
		d.mu.Lock()
		d.closed = true
		close(d.out)
		d.mu.Unlock()
	})
	return nil
}

// Deadlines are not supported below the delay; the proxy uses none.
func (d *delayConn) SetDeadline(time.Time) error      { return nil }
func (d *delayConn) SetReadDeadline(time.Time) error  { return nil }
func (d *delayConn) SetWriteDeadline(time.Time) error { return nil }

// wait sleeps until t, or until done closes (reporting false).
func wait(t time.Time, done <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-done:
		return false
	}
}

var _ net.Conn = (*delayConn)(nil)
