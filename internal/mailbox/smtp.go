package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
)

// Submission is a logged-in connection to an SMTP submission server
// (RFC 6409) that sends messages one after another. Its methods may be
// called from several goroutines; they take turns.
type Submission struct {
	acct   Account
	opts   *Options
	hider  *secretHider
	tcp    net.Conn // closing it ends the session at once, TLS or not
	conn   net.Conn // what go-smtp talks over, for the body's write deadlines
	c      *smtp.Client
	mu     sync.Mutex
	broken error // set once the connection cannot carry another command
	closed bool
	// secure is set once the connection is encrypted: implicit TLS, or a
	// STARTTLS whose handshake completed.
	secure bool
}

// maxReplyText bounds the server text kept in an SMTPError or returned by
// Send: a reply ends up in logs and in the database.
const maxReplyText = 500

// bodyChunk is how much of a message is written under one write
// deadline: the deadline moves with each chunk, so a large message on a
// slow link goes through while a server that stops reading is caught.
const bodyChunk = 64 << 10

// OpenSubmission connects to acct's SMTP submission server (acct.Protocol
// == "smtp"; Security TLS = implicit TLS, port 465 (RFC 8314); StartTLS =
// port 587, STARTTLS required (RFC 3207); Plain only with
// acct.AllowPlaintext), says EHLO, and logs in: SASL XOAUTH2 when
// acct.AccessToken != "", else AUTH PLAIN (or LOGIN if PLAIN is not
// offered) with acct.Username/acct.Password (RFC 4954). A Port of 0 means
// the security's standard port. It honours ctx (closing the conn when ctx
// ends), the dial timeout for connect and the TLS handshake, and the
// command timeout for each command.
func OpenSubmission(ctx context.Context, acct Account, opts *Options) (*Submission, error) {
	acct, err := submissionAccount(acct)
	if err != nil {
		return nil, err
	}
	if acct.Security == Plain && !acct.AllowPlaintext {
		// Refused before connecting: nothing at all crosses the network.
		return nil, plaintextError(acct, submissionMech(acct))
	}
	tcp, conn, err := dialSubmission(ctx, acct, opts)
	if err != nil {
		return nil, err
	}
	s := &Submission{acct: acct, opts: opts, hider: newSecretHider(acct), tcp: tcp}
	stop := context.AfterFunc(ctx, func() { _ = tcp.Close() })
	err = s.start(conn)
	if !stop() {
		err = fmt.Errorf("%s: %w", acct.addr(), ctx.Err())
	}
	if err != nil {
		_ = tcp.Close()
		return nil, hideCredentials(err, acct)
	}
	return s, nil
}

// submissionAccount checks acct is for SMTP and fills in the standard
// port: 465 for implicit TLS (RFC 8314 section 3.3), 587 otherwise (RFC
// 6409 section 3.1).
func submissionAccount(acct Account) (Account, error) {
	if acct.Protocol != "smtp" {
		return acct, fmt.Errorf("OpenSubmission needs protocol smtp, not %q", acct.Protocol)
	}
	if acct.Security != TLS && acct.Security != StartTLS && acct.Security != Plain {
		return acct, fmt.Errorf("unknown security %v for %s", acct.Security, acct.Host)
	}
	if acct.Port == 0 {
		acct.Port = 587
		if acct.Security == TLS {
			acct.Port = 465
		}
	}
	return acct, nil
}

// start reads the greeting, upgrades with STARTTLS when asked, says EHLO
// and logs in.
func (s *Submission) start(conn net.Conn) error {
	trace := newSMTPTrace(s.opts, s.acct)
	top, err := s.prelude(conn, trace)
	if err != nil {
		return err
	}
	s.conn = top
	s.c = smtp.NewClient(top)
	s.c.CommandTimeout = s.opts.commandTimeout()
	s.c.SubmissionTimeout = submissionTimeout(s.opts)
	if err := s.c.Hello(ehloName()); err != nil {
		return s.replyError("ehlo", err)
	}
	return s.login()
}

// submissionTimeout bounds the wait for the reply to the final dot, which
// a server gives only once it has queued (and maybe scanned) the message:
// RFC 5321 section 4.5.3.2.6 suggests 10 minutes; this waits at least 2.
func submissionTimeout(opts *Options) time.Duration {
	return max(2*opts.commandTimeout(), 2*time.Minute)
}

// Send submits one message: MAIL FROM:<from>, RCPT TO for each of to, DATA
// with msg (CRLF lines; go-smtp does the dot-stuffing of RFC 5321 section
// 4.5.2). It returns the server's reply text to the final dot (e.g.
// "2.0.0 OK <id> [Hostname=...]") for the record. The message goes to all
// of to or to none: a refused recipient fails the whole message. After a
// refused RCPT or DATA it sends RSET so the session can carry on with the
// next message; after a network failure the session is done, and each
// later Send returns that failure.
//
// A reply refusing the message comes back as an *SMTPError (a 4xx one
// inside a *NetError, so IsTemporary holds); addresses that cannot be
// sent (CR, LF, '<', '>', spaces) are refused before anything is sent.
func (s *Submission) Send(ctx context.Context, from string, to []string, msg []byte) (reply string, err error) {
	if err := checkEnvelope(from, to); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return "", errors.New("the SMTP session is closed")
	case s.broken != nil:
		return "", s.broken
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var ended atomic.Bool
	stop := context.AfterFunc(ctx, func() { ended.Store(true); _ = s.tcp.Close() })
	reply, err = s.send(from, to, msg, stop)
	stop()
	if ended.Load() {
		s.broken = fmt.Errorf("%s: session ended by %w", s.acct.addr(), ctx.Err())
		if err == nil {
			return reply, nil // accepted just before ctx ended: do not send it twice
		}
		return "", s.broken
	}
	err = hideCredentials(err, s.acct)
	if err != nil && s.broken == nil && sessionOver(err) {
		s.broken = err
	}
	return reply, err
}

// sessionOver reports whether err leaves no session to go on with: the
// connection failed (err is no reply), or the server said 421, which
// closes the channel (RFC 5321 section 3.8).
func sessionOver(err error) bool {
	var se *SMTPError
	return !errors.As(err, &se) || se.Code == 421
}

// send runs one transaction. Just before the final dot it calls
// keepOpen, which stops ctx from closing the connection (false: ctx ended
// already and closed it): once the dot is sent the server may queue the
// message at any moment, so its reply is awaited (for at most the
// submission timeout) even while the fetcher stops. Closing then would
// leave the notification pending, to be sent a second time.
func (s *Submission) send(from string, to []string, msg []byte, keepOpen func() bool) (string, error) {
	opts, err := s.mailOptions(from, to, len(msg))
	if err != nil {
		return "", err
	}
	if err := s.c.Mail(from, opts); err != nil {
		// A refused MAIL opens no transaction: nothing to reset.
		return "", s.replyError("mail", err)
	}
	for _, rcpt := range to {
		if err := s.c.Rcpt(rcpt, nil); err != nil {
			return "", s.reset(s.replyError("rcpt", err))
		}
	}
	w, err := s.c.Data()
	if err != nil {
		return "", s.reset(s.replyError("data", err))
	}
	if err := s.writeBody(w, msg); err != nil {
		return "", &NetError{Op: "send message to " + s.acct.addr(), Err: err}
	}
	if !keepOpen() {
		return "", &NetError{Op: "send message to " + s.acct.addr(), Err: errors.New("stopped before the final dot: the server discards the message")}
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.opts.commandTimeout())) // for the flush and the final dot
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", s.reset(s.replyError("data", err))
	}
	return s.boundText(resp.StatusText), nil
}

// mailOptions announces the message's size (RFC 1870), so a server can
// refuse a message too large before it is sent, and SMTPUTF8 (RFC 6531
// section 3.4) when an address is not ASCII.
func (s *Submission) mailOptions(from string, to []string, size int) (*smtp.MailOptions, error) {
	opts := &smtp.MailOptions{Size: int64(size)}
	if isASCII(from) && allASCIIAddrs(to) {
		return opts, nil
	}
	if ok, _ := s.c.Extension("SMTPUTF8"); !ok {
		return nil, noSMTPUTF8(s.acct.Host, from)
	}
	opts.UTF8 = true
	return opts, nil
}

// noSMTPUTF8 refuses, in the server's stead, a message with a non-ASCII
// address to a server without SMTPUTF8, with the reply RFC 6531 section
// 3.6 gives for it. Its stage is the sender's when that is the address,
// as then every message fails alike, else the recipient's.
func noSMTPUTF8(host, from string) *SMTPError {
	stage, what := "rcpt", "recipient"
	if !isASCII(from) {
		stage, what = "mail", "sender"
	}
	return &SMTPError{
		Host: host, Stage: stage, Code: 553, Enhanced: "5.6.7", local: true,
		Text: "the server does not offer SMTPUTF8 (RFC 6531), which the non-ASCII " + what + " address needs; use its ASCII form",
	}
}

// writeBody writes msg in chunks, each under a fresh write deadline: once
// DATA is accepted go-smtp sets none until the final dot.
func (s *Submission) writeBody(w io.Writer, msg []byte) error {
	for len(msg) > 0 {
		n := min(len(msg), bodyChunk)
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.opts.commandTimeout()))
		if _, err := w.Write(msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return nil
}

// reset ends the transaction after a refused RCPT or DATA with RSET (RFC
// 5321 section 4.1.1.5), so the next message starts clean, and returns
// err. go-smtp says EHLO again before the next MAIL, which RFC 5321
// section 4.1.4 makes equivalent to RSET; the login stays.
func (s *Submission) reset(err error) error {
	var se *SMTPError
	if !errors.As(err, &se) {
		return err // the connection failed: Send ends the session
	}
	if rerr := s.c.Reset(); rerr != nil {
		s.broken = &NetError{Op: "RSET after a refused " + strings.ToUpper(se.Stage) + " to " + s.acct.addr(), Err: rerr}
	}
	return err
}

// Close sends QUIT and closes the connection.
func (s *Submission) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	defer func() { _ = s.tcp.Close() }()
	if s.broken != nil {
		return nil
	}
	if err := s.c.Quit(); err != nil {
		return &NetError{Op: "QUIT to " + s.acct.addr(), Err: err}
	}
	return nil
}

// SMTPError is a reply from the server that refused a command, or, for a
// command the server could not take (a non-ASCII address without
// SMTPUTF8), the client's refusal in its stead, with the reply a server
// would give (553 5.6.7) and an Error text that says it was not sent.
type SMTPError struct {
	Host     string // server host, for the message
	Stage    string // "greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data"
	Code     int    // e.g. 550
	Enhanced string // e.g. "5.7.60"; "" when the server gave none (RFC 3463)
	// Text is the server's text, credentials hidden, at most 500 bytes,
	// valid UTF-8, one line (multi-line replies joined with " ").
	Text string
	// local marks the client's refusal: nothing was sent.
	local bool
}

// Error reads e.g. "smtp.office365.com refused RCPT: 550 5.1.1 User unknown".
func (e *SMTPError) Error() string {
	s := fmt.Sprintf("%s refused %s: %d", e.Host, e.command(), e.Code)
	if e.local {
		s = fmt.Sprintf("%s: %s not sent: %d", e.Host, e.command(), e.Code)
	}
	if e.Enhanced != "" {
		s += " " + e.Enhanced
	}
	if e.Text != "" {
		s += " " + e.Text
	}
	return s
}

func (e *SMTPError) command() string {
	if e.Stage == "greeting" {
		return "the session at its greeting"
	}
	return strings.ToUpper(e.Stage)
}

// Temporary reports a 4xx reply: the same command may succeed later (RFC
// 5321 section 4.2.1).
func (e *SMTPError) Temporary() bool { return e.Code/100 == 4 }

// replyError turns a go-smtp error at stage into ours: a reply becomes an
// *SMTPError (inside a *NetError when it is 4xx, so IsTemporary holds),
// anything else a *NetError.
func (s *Submission) replyError(stage string, err error) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return &NetError{Op: fmt.Sprintf("SMTP %s with %s", strings.ToUpper(stage), s.acct.addr()), Err: err}
	}
	return s.temporary(s.smtpError(stage, se.Code, enhancedOf(se.EnhancedCode), se.Message))
}

// temporary wraps a 4xx reply in a NetError: the server is busy or short
// of something, and nobody needs to change anything.
func (s *Submission) temporary(e *SMTPError) error {
	if e.Temporary() {
		return &NetError{Op: "SMTP submission to " + s.acct.addr(), Err: e}
	}
	return e
}

func (s *Submission) smtpError(stage string, code int, enhanced, text string) *SMTPError {
	return &SMTPError{Host: s.acct.Host, Stage: stage, Code: code, Enhanced: enhanced, Text: s.boundText(text)}
}

// enhancedOf formats an RFC 3463 status code; go-smtp leaves it zero when
// the reply had none.
func enhancedOf(c smtp.EnhancedCode) string {
	if c[0] < 2 || c[0] > 5 {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
}

// boundText makes server text safe to keep: one line, valid UTF-8, no
// control characters, no credentials, at most maxReplyText bytes.
func (s *Submission) boundText(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ReplaceAll(text, "\r\n", "\n"))
	text = string(s.hider.hide([]byte(strings.TrimSpace(text))))
	if len(text) <= maxReplyText {
		return text
	}
	cut := maxReplyText - len("…")
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "…"
}

// checkEnvelope refuses addresses that would change the command they go
// into: CR or LF would end it early and start another (command
// injection), '<', '>' and spaces would end the path (RFC 5321 section
// 4.1.2). An empty from is the null reverse-path "<>".
func checkEnvelope(from string, to []string) error {
	if err := checkAddr("sender", from); err != nil {
		return fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	if len(to) == 0 {
		return fmt.Errorf("%w: no recipients", ErrBadAddress)
	}
	for _, rcpt := range to {
		if rcpt == "" {
			return fmt.Errorf("%w: empty recipient address", ErrBadAddress)
		}
		if err := checkAddr("recipient", rcpt); err != nil {
			return fmt.Errorf("%w: %w", ErrBadAddress, err)
		}
	}
	return nil
}

// ErrBadAddress is wrapped by Send for an address SMTP cannot carry: the
// message is refused before anything is sent, and the session goes on.
var ErrBadAddress = errors.New("address not sent")

// maxPath is the longest reverse- or forward-path, brackets included
// (RFC 5321 section 4.5.3.1.3).
const maxPath = 256

func checkAddr(role, addr string) error {
	switch {
	case len(addr)+2 > maxPath:
		return fmt.Errorf("%s address is %d bytes, over SMTP's limit of %d", role, len(addr), maxPath-2)
	case !utf8.ValidString(addr):
		return fmt.Errorf("%s address %q is not valid UTF-8", role, addr)
	case strings.ContainsFunc(addr, badAddrRune):
		return fmt.Errorf("%s address %q holds a character SMTP cannot carry in a path (CR, LF, control, space, '<' or '>')", role, addr)
	}
	return nil
}

func badAddrRune(r rune) bool {
	return r < ' ' || r == ' ' || r == 0x7f || r == '<' || r == '>'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func allASCIIAddrs(addrs []string) bool {
	for _, a := range addrs {
		if !isASCII(a) {
			return false
		}
	}
	return true
}
