package mailbox

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// The fuzz targets of this package drive the real POP3 and IMAP sessions
// against scripted servers whose answers are the fuzz input. What they
// share is here.

// Known credentials: the targets assert that no error ever shows them.
const (
	fuzzUser  = "support@example.com"
	fuzzToken = "ya29.a0AfB_byC-FuzzAccessToken_0123456789abcdefghijklmnopqrstuvwxyz"
)

// fuzzIR is the base64 XOAUTH2 initial response, as it crosses the wire.
var fuzzIR = base64.StdEncoding.EncodeToString(XOAUTH2Response(fuzzUser, fuzzToken))

// callLimit bounds every session call of a fuzz target: far above what a
// call takes (the command timeouts used are 100 ms to 1 s), so only a call
// that ignores its deadline and its context reaches it.
const callLimit = 5 * time.Second

// within runs fn and fails t if it has not returned after callLimit: a
// session call that hangs is a bug even when a deadline would end it later.
func within(t *testing.T, name string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(callLimit):
		t.Fatalf("%s did not return within %v", name, callLimit)
	}
}

// expandMarkers puts the secrets into a scripted answer to the login:
// "$TOKEN" becomes the access token and "$IR" the base64 initial response,
// so that the fuzzer can make the server echo them anywhere (a POP3 server
// answering the response line with "-ERR unknown command <line>"). Only
// the login's answer is expanded: before it the server cannot know them,
// and no server quotes them back later. "$T" becomes tag in any answer.
func expandMarkers(b []byte, tag string) []byte {
	return expandTag(expandSecrets(b), tag)
}

func expandSecrets(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("$TOKEN"), []byte(fuzzToken))
	return bytes.ReplaceAll(b, []byte("$IR"), []byte(fuzzIR))
}

func expandTag(b []byte, tag string) []byte {
	return bytes.ReplaceAll(b, []byte("$T"), []byte(tag))
}

// leakWindow is the length of the shortest piece of a secret that counts
// as leaked.
const leakWindow = 16

// secretWindows holds every leakWindow-long piece of the token, raw and as
// it appears inside the base64 initial response.
var secretWindows = func() map[string]bool {
	w := map[string]bool{}
	add := func(s string) {
		for i := 0; i+leakWindow <= len(s); i++ {
			w[s[i:i+leakWindow]] = true
		}
	}
	add(fuzzToken)
	// The characters of the base64 response that encode token bytes only:
	// from the first 3-byte group that starts inside the token to the last
	// that ends inside it.
	at := len(XOAUTH2Response(fuzzUser, "")) - len("\x01\x01")
	from, to := (at+2)/3*4, (at+len(fuzzToken))/3*4
	add(fuzzIR[from:to])
	return w
}()

// leaked returns the first piece of the token found in s, or "".
func leaked(s string) string {
	for i := 0; i+leakWindow <= len(s); i++ {
		if secretWindows[s[i:i+leakWindow]] {
			return s[i : i+leakWindow]
		}
	}
	return ""
}

// requireNoLeak fails t if err's text shows a piece of the token.
func requireNoLeak(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if piece := leaked(err.Error()); piece != "" {
		t.Fatalf("%s: error shows the token (%q): %v", what, piece, err)
	}
}

// fuzzConn is the client's end of a connection to a scripted server that
// answers inside the client's Write: each line the client sends goes to
// answer, and the reply is queued for the client to read.
//
// With nothing queued, Read returns io.EOF once the server has said it will
// send nothing more until the next command (more is false): a client
// waiting for a reply the script cut short fails at once instead of after
// its command timeout, which keeps the fuzzer fast. Otherwise Read blocks,
// as on a silent server, until the deadline or Close.
type fuzzConn struct {
	// answer returns the reply to one line (without its line ending) and
	// whether the server may send more after it; a nil reply leaves the
	// last word on that as it was (e.g. for a SASL response line).
	answer func(line []byte) (reply []byte, more bool)

	mu       sync.Mutex
	cond     *sync.Cond
	in, out  []byte
	more     bool
	closed   bool
	deadline time.Time
	timer    *time.Timer
	// served counts the bytes the server queued, to bound what the client
	// can have read.
	served int
}

func newFuzzConn(greeting []byte, more bool, answer func([]byte) ([]byte, bool)) *fuzzConn {
	c := &fuzzConn{answer: answer, out: greeting, more: more, served: len(greeting)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, net.ErrClosed
		case len(c.out) > 0:
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		case !c.more:
			return 0, io.EOF
		case !c.deadline.IsZero() && !time.Now().Before(c.deadline):
			return 0, os.ErrDeadlineExceeded
		}
		c.cond.Wait()
	}
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.in = append(c.in, p...)
	for {
		i := bytes.IndexByte(c.in, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSuffix(c.in[:i], []byte("\r"))
		c.in = c.in[i+1:]
		if reply, more := c.answer(line); reply != nil {
			c.out = append(c.out, reply...)
			c.served += len(reply)
			c.more = more
		}
	}
	c.cond.Broadcast()
	return len(p), nil
}

func (c *fuzzConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.cond.Broadcast()
	return nil
}

func (c *fuzzConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !t.IsZero() {
		c.timer = time.AfterFunc(time.Until(t), func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.cond.Broadcast()
		})
	}
	return nil
}

func (c *fuzzConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *fuzzConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }
func (c *fuzzConn) LocalAddr() net.Addr                { return fuzzAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr               { return fuzzAddr{} }

// servedBytes is how many bytes the server has queued so far.
func (c *fuzzConn) servedBytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.served
}

type fuzzAddr struct{}

func (fuzzAddr) Network() string { return "fuzz" }
func (fuzzAddr) String() string  { return "fuzz" }

// lines splits b into lines without their endings, as the servers'
// clients read them.
func lines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		out = append(out, bytes.TrimSuffix(line, []byte("\r")))
		b = rest
	}
	return out
}
