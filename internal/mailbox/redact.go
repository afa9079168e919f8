package mailbox

import (
	"bytes"
	"encoding/base64"
	"io"
	"regexp"
	"sync"
)

// redactor passes the POP3 protocol trace through line by line and blanks
// what would reveal a credential: the arguments of AUTH, USER and PASS,
// any line that is a bare base64 blob (a SASL response sent after a
// continuation, RFC 5034 section 4), and the session's secrets wherever
// they occur, since a server may echo them ("-ERR Unknown command:
// <response>"). One redactor per direction, so that a line read in pieces
// never mixes with a command line.
type redactor struct {
	mu      sync.Mutex
	out     io.Writer
	secrets *secretHider
	buf     []byte
}

var _ io.Writer = (*redactor)(nil)

var (
	credentialCommand = regexp.MustCompile(`(?i)^(\S+ )?(LOGIN|AUTHENTICATE|AUTH|PASS|USER)( \S+)?( .*)?$`)
	base64Line        = regexp.MustCompile(`^[A-Za-z0-9+/]{16,}={0,2}$|^=$`)
)

// redactingWriter returns the POP3 trace writer for one direction of a
// session of acct, or nil when there is no trace.
func redactingWriter(opts *Options, acct Account) io.Writer {
	if opts == nil || opts.DebugWriter == nil {
		return nil
	}
	return &redactor{out: opts.DebugWriter, secrets: newSecretHider(acct)}
}

func (r *redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	for {
		i := bytes.IndexByte(r.buf, '\n')
		if i < 0 {
			break
		}
		line := r.secrets.hide(redactLine(bytes.TrimRight(r.buf[:i], "\r")))
		r.buf = r.buf[i+1:]
		if _, err := r.out.Write(append(line, '\n')); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// redactLine keeps the command word (and for AUTHENTICATE the mechanism)
// so the trace still shows what happened.
func redactLine(line []byte) []byte {
	if base64Line.Match(line) {
		return []byte("[redacted]")
	}
	m := credentialCommand.FindSubmatch(line)
	if m == nil || len(m[4]) == 0 && len(m[3]) == 0 {
		return append([]byte(nil), line...)
	}
	keep := append(append([]byte(nil), m[1]...), m[2]...)
	if bytes.EqualFold(m[2], []byte("AUTHENTICATE")) || bytes.EqualFold(m[2], []byte("AUTH")) {
		keep = append(keep, m[3]...)
		if len(m[4]) == 0 {
			return keep
		}
	}
	return append(keep, " [redacted]"...)
}

// imapTrace writes the IMAP protocol trace: one Write to out per line,
// "C: " in front of what the client sent and "S: " in front of what the
// server sent. Each direction has its own line buffer, so a line read in
// pieces never merges with a command line written meanwhile.
//
// Authentication is hidden by state, not by the look of a line: after a
// LOGIN or AUTHENTICATE command, every client line is hidden until the
// server's tagged reply to that command has been read. That covers a
// password sent as a synchronizing literal after the server's "+"
// (RFC 9051 section 4.3), a non-synchronizing one in the same write
// (RFC 7888), SASL responses after continuations and the empty response
// to an error challenge (RFC 9051 section 6.2.2). The session's secrets
// are hidden in every line, both ways, for a server that echoes them.
type imapTrace struct {
	mu      sync.Mutex
	out     io.Writer
	secrets *secretHider
	client  []byte
	server  []byte
	// authTag is the tag of the LOGIN or AUTHENTICATE command whose tagged
	// reply has not been read yet; nil when none is in flight.
	authTag []byte
}

// newIMAPTrace returns the trace of a session of acct, or nil when there
// is none.
func newIMAPTrace(opts *Options, acct Account) *imapTrace {
	if opts == nil || opts.DebugWriter == nil {
		return nil
	}
	return &imapTrace{out: opts.DebugWriter, secrets: newSecretHider(acct)}
}

var (
	imapAuthCommand = regexp.MustCompile(`(?i)^(\S+) (LOGIN|AUTHENTICATE)( |$)`)
	imapTaggedReply = regexp.MustCompile(`(?i)^(\S+) (OK|NO|BAD)( |$)`)
)

// sent traces bytes the client is about to write. The caller traces them
// before writing: once they are on the wire the server may answer, and a
// tagged reply traced first would end the hiding too early.
func (t *imapTrace) sent(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.client = t.lines(t.client, p, "C: ", t.clientLine)
}

// received traces bytes read from the server.
func (t *imapTrace) received(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.server = t.lines(t.server, p, "S: ", t.serverLine)
}

// lines writes out each whole line of buf+p (see traceLines).
func (t *imapTrace) lines(buf, p []byte, prefix string, fn func([]byte) []byte) []byte {
	return traceLines(t.out, buf, p, prefix, fn)
}

// traceLines appends p to buf, writes each whole line to out through fn
// with prefix in front, one Write per line, and returns what is left of
// the last, unfinished one. The writer's errors are dropped: a broken
// trace must not break the session.
func traceLines(out io.Writer, buf, p []byte, prefix string, fn func([]byte) []byte) []byte {
	buf = append(buf, p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return buf
		}
		line := fn(bytes.TrimRight(buf[:i], "\r"))
		buf = buf[i+1:]
		b := make([]byte, 0, len(prefix)+len(line)+1)
		b = append(append(append(b, prefix...), line...), '\n')
		_, _ = out.Write(b)
	}
}

func (t *imapTrace) clientLine(line []byte) []byte {
	if t.authTag != nil {
		return []byte("[redacted]")
	}
	if m := imapAuthCommand.FindSubmatch(line); m != nil {
		t.authTag = append([]byte(nil), m[1]...)
		return t.secrets.hide(redactLine(line))
	}
	return t.secrets.hide(line)
}

func (t *imapTrace) serverLine(line []byte) []byte {
	if t.authTag != nil {
		if m := imapTaggedReply.FindSubmatch(line); m != nil && bytes.Equal(m[1], t.authTag) {
			t.authTag = nil
		}
	}
	return t.secrets.hide(line)
}

// secretHider hides a session's secrets in trace lines and, through
// hideCredentials, in login errors: every run of at least minSecretPiece bytes of
// the access token or of its base64 XOAUTH2 initial response, and the
// whole password when it has at least 4 bytes. The pieces are kept in a
// set rather than searched for, since a trace line may be a megabyte of
// message and a token kilobytes long.
type secretHider struct {
	windows  map[string]bool
	password string
}

func newSecretHider(acct Account) *secretHider {
	h := &secretHider{windows: map[string]bool{}}
	if acct.AccessToken != "" {
		ir := base64.StdEncoding.EncodeToString(XOAUTH2Response(acct.Username, acct.AccessToken))
		for _, s := range []string{acct.AccessToken, ir} {
			for i := 0; i+minSecretPiece <= len(s); i++ {
				h.windows[s[i:i+minSecretPiece]] = true
			}
		}
	}
	if len(acct.Password) >= 4 {
		h.password = acct.Password
	}
	return h
}

// hide returns line with the secrets replaced by "[redacted]". A nil
// hider hides nothing.
func (h *secretHider) hide(line []byte) []byte {
	if h == nil || len(h.windows) == 0 && h.password == "" {
		return line
	}
	if h.password != "" {
		line = bytes.ReplaceAll(line, []byte(h.password), []byte("[redacted]"))
	}
	if len(h.windows) == 0 || len(line) < minSecretPiece {
		return line
	}
	var out []byte
	for i := 0; i < len(line); {
		if i+minSecretPiece > len(line) || !h.windows[string(line[i:i+minSecretPiece])] {
			out = append(out, line[i])
			i++
			continue
		}
		// Extend the run while each next window is secret too.
		n := minSecretPiece
		for i+n < len(line) && h.windows[string(line[i+n+1-minSecretPiece:i+n+1])] {
			n++
		}
		out = append(out, "[redacted]"...)
		i += n
	}
	return out
}

// hideCredentials keeps the account's access token, its XOAUTH2 string
// and its password out of the text of err, the result of a login, by the
// rules secretHider applies to traces. A server may echo what it got: a
// POP3 server that takes the response line for a command answers "-ERR
// Unknown command: <line>", a challenge may quote the response, a refused
// PASS may be repeated. That text ends up in logs and in
// mailboxes.last_error. The text is hidden when it is read, since the IMAP
// session fills in the BYE reason of its NetError afterwards.
func hideCredentials(err error, acct Account) error {
	if err == nil {
		return nil
	}
	h := newSecretHider(acct)
	if len(h.windows) == 0 && h.password == "" {
		return err
	}
	return &credentialsHiddenError{err: err, hider: h}
}

// credentialsHiddenError is an error whose text hides credentials;
// errors.As and errors.Is see the error inside.
type credentialsHiddenError struct {
	err   error
	hider *secretHider
}

func (e *credentialsHiddenError) Error() string { return string(e.hider.hide([]byte(e.err.Error()))) }

func (e *credentialsHiddenError) Unwrap() error { return e.err }
