package mailbox

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// dialSubmission connects to acct's server and, for implicit TLS (RFC
// 8314), completes the handshake, all within the dial timeout and ctx. It
// returns the TCP connection and the one to talk over (the same, or TLS on
// top of it).
func dialSubmission(ctx context.Context, acct Account, opts *Options) (tcp, conn net.Conn, err error) {
	ctx, cancel := context.WithTimeout(ctx, opts.dialTimeout())
	defer cancel()
	var d net.Dialer
	tcp, err = d.DialContext(ctx, "tcp", acct.addr())
	if err != nil {
		return nil, nil, &NetError{Op: "connect to " + acct.addr(), Err: err}
	}
	if acct.Security != TLS {
		return tcp, tcp, nil
	}
	tc := tls.Client(tcp, opts.tlsConfig(acct.Host))
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = tcp.Close()
		return nil, nil, tlsError(acct, err)
	}
	return tcp, tc, nil
}

// syntheticGreeting stands in, for go-smtp, for the greeting read by
// prelude: after STARTTLS the session starts over without one (RFC 3207
// section 4.2), and go-smtp wants one before its EHLO. It sits above the
// trace, so it never shows there.
const syntheticGreeting = "220 greeting already read\r\n"

// prelude reads the greeting and, for StartTLS, upgrades the connection,
// and returns the conn go-smtp is to talk over. It does itself what
// go-smtp's NewClientStartTLS does, so that TLS sits below the conn the
// trace sees, and so that a refused greeting is told from a refused EHLO.
func (s *Submission) prelude(conn net.Conn, trace *smtpTrace) (net.Conn, error) {
	clear := &smtpConn{Conn: conn, trace: trace}
	// One byte at a time: nothing the server sends after a reply may be
	// read here, where it would bypass TLS or go-smtp.
	br := bufio.NewReaderSize(oneByteReader{clear}, 16)
	_ = conn.SetDeadline(time.Now().Add(s.opts.commandTimeout()))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	greeting, err := readReply(br)
	if err != nil {
		return nil, &NetError{Op: "read greeting of " + s.acct.addr(), Err: err}
	}
	if greeting.code != 220 {
		// 554 (no service here) or 421 (not now): RFC 5321 section 3.1.
		return nil, s.replyOf("greeting", greeting)
	}
	if s.acct.Security != StartTLS {
		s.secure = s.acct.Security == TLS
		return &prefixConn{Conn: clear, prefix: []byte(syntheticGreeting)}, nil
	}
	tc, err := s.startTLS(clear, br)
	if err != nil {
		return nil, err
	}
	s.secure = true
	return &prefixConn{Conn: &smtpConn{Conn: tc, trace: trace}, prefix: []byte(syntheticGreeting)}, nil
}

// startTLS says EHLO over clear, checks that STARTTLS is offered, sends it
// and completes the TLS handshake over the TCP connection (RFC 3207). A
// server that offers or grants no STARTTLS ends the session: going on in
// clear would send the credentials in clear (RFC 3207 section 4.1).
func (s *Submission) startTLS(clear net.Conn, br *bufio.Reader) (*tls.Conn, error) {
	ehlo, err := s.command(clear, br, "EHLO "+ehloName())
	if err != nil {
		return nil, err
	}
	if ehlo.code != 250 {
		return nil, s.replyOf("ehlo", ehlo)
	}
	if !ehlo.offers("STARTTLS") {
		return nil, fmt.Errorf("%s does not offer STARTTLS, so no login was sent in clear (RFC 3207): check the host and port (587 takes STARTTLS, 465 implicit TLS)",
			s.acct.addr())
	}
	r, err := s.command(clear, br, "STARTTLS")
	if err != nil {
		return nil, err
	}
	if r.code != 220 {
		return nil, fmt.Errorf("%w; no login was sent in clear (use implicit TLS on port 465 if the server offers it)", s.replyOf("starttls", r))
	}
	tc := tls.Client(s.tcp, s.opts.tlsConfig(s.acct.Host))
	_ = s.tcp.SetDeadline(time.Now().Add(s.opts.dialTimeout()))
	if err := tc.Handshake(); err != nil {
		return nil, tlsError(s.acct, err)
	}
	return tc, nil
}

// command sends line and reads the reply, within the command timeout.
func (s *Submission) command(conn net.Conn, br *bufio.Reader, line string) (smtpReply, error) {
	verb, _, _ := strings.Cut(line, " ")
	_ = conn.SetDeadline(time.Now().Add(s.opts.commandTimeout()))
	if _, err := io.WriteString(conn, line+"\r\n"); err != nil {
		return smtpReply{}, &NetError{Op: verb + " to " + s.acct.addr(), Err: err}
	}
	r, err := readReply(br)
	if err != nil {
		return r, &NetError{Op: "read reply to " + verb + " from " + s.acct.addr(), Err: err}
	}
	return r, nil
}

// replyOf is the error for a reply refusing stage.
func (s *Submission) replyOf(stage string, r smtpReply) error {
	enhanced, text := r.text()
	return s.temporary(s.smtpError(stage, r.code, enhanced, text))
}

// smtpReply is one reply: its code and the text of each line.
type smtpReply struct {
	code  int
	lines []string
}

// maxReplyLines bounds a multi-line reply; an EHLO reply has a few dozen.
const maxReplyLines = 200

var errMalformedReply = errors.New("malformed SMTP reply")

// readReply reads one reply (RFC 5321 section 4.2): lines "NNN-text"
// continued up to the last one, "NNN text" or "NNN".
func readReply(br *bufio.Reader) (smtpReply, error) {
	var r smtpReply
	for range maxReplyLines {
		line, err := readLine(br)
		if err != nil {
			return r, err
		}
		if len(line) < 3 || len(line) > 3 && line[3] != ' ' && line[3] != '-' {
			return r, fmt.Errorf("%w %q", errMalformedReply, truncate(line, 100))
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 || len(r.lines) > 0 && code != r.code {
			return r, fmt.Errorf("%w %q", errMalformedReply, truncate(line, 100))
		}
		r.code = code
		if len(line) == 3 {
			r.lines = append(r.lines, "")
			return r, nil
		}
		r.lines = append(r.lines, line[4:])
		if line[3] == ' ' {
			return r, nil
		}
	}
	return r, fmt.Errorf("reply longer than %d lines", maxReplyLines)
}

var enhancedCode = regexp.MustCompile(`^([245])\.[0-9]{1,3}\.[0-9]{1,3}$`)

// text splits off the enhanced status code (RFC 3463; RFC 2034 section 4
// puts it at the start of every line) and joins the lines with " ".
func (r smtpReply) text() (enhanced, text string) {
	if len(r.lines) == 0 {
		return "", ""
	}
	first, _, _ := strings.Cut(r.lines[0], " ")
	if m := enhancedCode.FindStringSubmatch(first); m != nil && m[1][0]-'0' == byte(r.code/100) {
		enhanced = first
	}
	parts := make([]string, len(r.lines))
	for i, l := range r.lines {
		if enhanced != "" {
			l = strings.TrimPrefix(strings.TrimPrefix(l, enhanced), " ")
		}
		parts[i] = l
	}
	return enhanced, strings.Join(parts, " ")
}

// offers reports whether an EHLO reply names the extension keyword (RFC
// 5321 section 4.1.1.1: one per line after the first).
func (r smtpReply) offers(keyword string) bool {
	for _, l := range r.lines[min(1, len(r.lines)):] {
		if word, _, _ := strings.Cut(l, " "); strings.EqualFold(word, keyword) {
			return true
		}
	}
	return false
}

// ehloName is the name given in EHLO: the machine's host name when it is
// a syntactically valid domain (RFC 5321 section 4.1.1.1), else
// "localhost".
var ehloName = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil || !validDomain(h) {
		return "localhost"
	}
	return h
})

var domainName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func validDomain(s string) bool { return len(s) <= 253 && domainName.MatchString(s) }

// maxReplyBytes bounds what the server may send between two writes of the
// client: one reply, a few KB at most. A hostile or broken server that
// streams without end fails the read instead of filling memory until the
// deadline.
const maxReplyBytes = 1 << 20

var errReplyTooLong = fmt.Errorf("the server sent more than %d bytes in one reply", maxReplyBytes)

// smtpConn is the conn the SMTP client talks over: it writes the protocol
// trace (above TLS, where the lines are SMTP rather than TLS records) and
// bounds each reply. go-smtp's own DebugWriter is not used: it tees both
// directions into one writer and so cannot tell a credential from a reply.
type smtpConn struct {
	net.Conn
	trace *smtpTrace
	// read counts the bytes read since the client last wrote.
	read atomic.Int64
}

func (c *smtpConn) Read(p []byte) (int, error) {
	if c.read.Load() > maxReplyBytes {
		return 0, errReplyTooLong
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.read.Add(int64(n))
		c.trace.received(p[:n])
	}
	return n, err
}

// Write traces p before sending it: see smtpTrace.sent.
func (c *smtpConn) Write(p []byte) (int, error) {
	c.read.Store(0)
	c.trace.sent(p)
	return c.Conn.Write(p)
}
