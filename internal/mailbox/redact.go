package mailbox

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"sync"
)

// redactor passes a protocol trace through line by line and blanks what
// would reveal a credential: the arguments of LOGIN, AUTHENTICATE and AUTH
// commands, USER/PASS, and any line that is a bare base64 blob (a SASL
// response sent after a continuation).
type redactor struct {
	mu  sync.Mutex
	out io.Writer
	buf []byte
	// literal is set after a redacted command line that announced a
	// literal ({N} or {N+}, RFC 9051 section 4.3): the literal's bytes are
	// the rest of the credential, e.g. a non-ASCII password.
	literal bool
}

var literalMarker = regexp.MustCompile(`\{\d+\+?\}$`)

var _ io.Writer = (*redactor)(nil)

var (
	credentialCommand = regexp.MustCompile(`(?i)^(\S+ )?(LOGIN|AUTHENTICATE|AUTH|PASS|USER)( \S+)?( .*)?$`)
	base64Line        = regexp.MustCompile(`^[A-Za-z0-9+/]{16,}={0,2}$|^=$`)
)

func redactingWriter(opts *Options) io.Writer {
	if opts == nil || opts.DebugWriter == nil {
		return nil
	}
	return &redactor{out: opts.DebugWriter}
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
		raw := bytes.TrimRight(r.buf[:i], "\r")
		line := redactLine(raw)
		if r.literal {
			line = []byte("[redacted]")
		}
		r.literal = !bytes.Equal(line, raw) && literalMarker.Match(raw)
		if _, err := r.out.Write(append(line, '\n')); err != nil {
			return len(p), err
		}
		r.buf = r.buf[i+1:]
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

// hidePassword keeps the password out of the text of err, the result of a
// password login: like a token (see hideToken), a server may echo the
// command it refused ("-ERR unknown command PASS s3cret"). Passwords are
// short, so the whole password is replaced wherever it occurs rather than
// runs of it; one under 4 bytes would match ordinary words and is left.
func hidePassword(err error, password string) error {
	if err == nil || len(password) < 4 {
		return err
	}
	return &passwordHiddenError{err: err, password: password}
}

type passwordHiddenError struct {
	err      error
	password string
}

func (e *passwordHiddenError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.password, "[redacted]")
}

func (e *passwordHiddenError) Unwrap() error { return e.err }
