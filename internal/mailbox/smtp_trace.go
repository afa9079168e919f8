package mailbox

import (
	"bytes"
	"io"
	"sync"
)

// smtpTrace writes the SMTP protocol trace: one Write to out per line,
// "C: " in front of what the client sent and "S: " in front of what the
// server sent, each direction with its own line buffer, like imapTrace.
//
// Authentication is hidden by state, not by the look of a line: after an
// AUTH command every client line is hidden until the server sends a reply
// whose code is not 334 (RFC 4954 section 4: 334 asks for the next
// response, anything else ends the exchange). That covers the XOAUTH2
// response on its own line, LOGIN's user name and password and the empty
// answer to an error challenge. The AUTH line itself keeps only the
// mechanism. The session's secrets are hidden in every line, both ways,
// for a server that echoes them.
//
// The message between DATA's 354 and the final "." is shown as it goes,
// and never read as commands: a body line starting "AUTH" is text.
type smtpTrace struct {
	mu      sync.Mutex
	out     io.Writer
	secrets *secretHider
	client  []byte
	server  []byte
	// auth is set from an AUTH command until the reply that ends it.
	auth bool
	data dataState
}

// dataState follows DATA (RFC 5321 section 4.1.1.4).
type dataState int

const (
	noData   dataState = iota
	dataSent           // DATA sent, its reply not read yet
	inBody             // 354 read: client lines are the message up to "."
)

// newSMTPTrace returns the trace of a session of acct, or nil when there
// is none. A nil trace traces nothing.
func newSMTPTrace(opts *Options, acct Account) *smtpTrace {
	if opts == nil || opts.DebugWriter == nil {
		return nil
	}
	return &smtpTrace{out: opts.DebugWriter, secrets: newSecretHider(acct)}
}

// sent traces bytes the client is about to write. The caller traces them
// before writing: once they are on the wire the server may answer, and a
// reply traced first would end the hiding too early.
func (t *smtpTrace) sent(p []byte) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.client = t.lines(t.client, p, "C: ", t.clientLine)
}

// received traces bytes read from the server.
func (t *smtpTrace) received(p []byte) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.server = t.lines(t.server, p, "S: ", t.serverLine)
}

// lines writes out each whole line of buf+p, as the IMAP trace does.
func (t *smtpTrace) lines(buf, p []byte, prefix string, fn func([]byte) []byte) []byte {
	return traceLines(t.out, buf, p, prefix, fn)
}

func (t *smtpTrace) clientLine(line []byte) []byte {
	switch {
	case t.data == inBody:
		if string(line) == "." {
			t.data = noData
		}
		return t.secrets.hide(line)
	case t.auth:
		return []byte("[redacted]")
	}
	verb, rest, _ := bytes.Cut(line, []byte(" "))
	switch {
	case bytes.EqualFold(verb, []byte("AUTH")):
		t.auth = true
		return authCommandLine(verb, rest)
	case bytes.EqualFold(line, []byte("DATA")):
		t.data = dataSent
	}
	return t.secrets.hide(line)
}

// authCommandLine keeps AUTH and the mechanism; an initial response
// becomes "[redacted]".
func authCommandLine(verb, rest []byte) []byte {
	mech, ir, _ := bytes.Cut(rest, []byte(" "))
	out := append(append(append([]byte(nil), verb...), ' '), mech...)
	if len(ir) > 0 {
		out = append(out, " [redacted]"...)
	}
	return bytes.TrimRight(out, " ")
}

func (t *smtpTrace) serverLine(line []byte) []byte {
	code, final := replyCode(line)
	if t.auth && code != 0 && code != 334 {
		t.auth = false
	}
	if t.data == dataSent && final {
		t.data = noData
		if code == 354 {
			t.data = inBody
		}
	}
	return t.secrets.hide(line)
}

// replyCode reads the code of a reply line, 0 when it has none, and
// whether it is the reply's last line ("NNN text" or "NNN", not "NNN-").
func replyCode(line []byte) (code int, final bool) {
	if len(line) < 3 {
		return 0, false
	}
	for _, b := range line[:3] {
		if b < '0' || b > '9' {
			return 0, false
		}
		code = code*10 + int(b-'0')
	}
	return code, len(line) == 3 || line[3] == ' '
}
