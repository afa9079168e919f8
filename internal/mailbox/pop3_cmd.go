package mailbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// attach sends the commands over c from now on, traced (redacted) to the
// DebugWriter when there is one.
func (s *pop3Session) attach(c net.Conn) {
	s.rw = c
	var r io.Reader = c
	s.w = c
	// Two redactors, one per direction, so that a line read in pieces
	// never mixes with a command line in the trace.
	if in := redactingWriter(s.opts, s.acct); in != nil {
		r = io.TeeReader(c, quietWriter{in})
		s.w = io.MultiWriter(c, quietWriter{redactingWriter(s.opts, s.acct)})
	}
	s.r = bufio.NewReaderSize(r, pop3ReadBuffer)
}

// quietWriter keeps a failing DebugWriter from failing the session.
type quietWriter struct{ w io.Writer }

func (q quietWriter) Write(p []byte) (int, error) {
	_, _ = q.w.Write(p)
	return len(p), nil
}

// cmd sends one command and reads its status line, returning the text
// after "+OK". A -ERR is a *pop3Error unless it means the session is over
// or the server is busy (see refusal). PASS's argument is kept out of
// errors.
func (s *pop3Session) cmd(verb string, args ...string) (string, error) {
	line := strings.Join(append([]string{verb}, args...), " ")
	label := line
	if verb == "PASS" {
		label = verb
	}
	if err := s.send(label, line); err != nil {
		return "", err
	}
	return s.status(label)
}

// send writes lines, each ended by CRLF, in one write.
func (s *pop3Session) send(label string, lines ...string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return &NetError{Op: "POP3 " + label, Err: err}
	}
	return nil
}

// next reads one reply line: a status line or an AUTH continuation.
func (s *pop3Session) next(label string) (pop3Reply, error) {
	line, err := readLine(s.r)
	if err != nil {
		return pop3Reply{}, &NetError{Op: "POP3 " + label, Err: err}
	}
	r, err := parseReply(line)
	if err != nil {
		return r, &NetError{Op: "POP3 " + label, Err: err}
	}
	return r, nil
}

// status reads a status line and returns the text after "+OK".
func (s *pop3Session) status(label string) (string, error) {
	r, err := s.next(label)
	switch {
	case err != nil:
		return "", err
	case r.kind == replyErr:
		return "", s.refusal(label, r.text)
	case r.kind == replyMore:
		return "", &NetError{Op: "POP3 " + label, Err: fmt.Errorf("unexpected continuation %q", truncate(r.text, 100))}
	}
	return r.text, nil
}

// refusal turns a -ERR into an error: a *pop3Error, unless the reply
// means the session is over or the server is busy. A server ending the
// session because the access token expired (as Exchange does with "* BYE
// Session invalidated - AccessTokenExpired" over IMAP) is a NetError with
// Bye set, so TokenExpired sees it; a busy one ([SYS/TEMP], [IN-USE],
// [LOGIN-DELAY]) is a NetError, worth retrying. Neither wraps a
// *pop3Error, so isPOP3Err means "refused" only.
func (s *pop3Session) refusal(label, text string) error {
	pe := &pop3Error{cmd: label, text: text}
	said := errors.New("-ERR " + text)
	ended := errors.New("the server ended the session")
	if ne := (&NetError{Op: "POP3 " + label, Err: ended, Bye: text}); TokenExpired(ne) {
		return ne
	}
	if pe.temporary() {
		return &NetError{Op: "POP3 " + label, Err: said}
	}
	return pe
}

// lines reads the body of a short multi-line response. An error from fn
// (a line it cannot parse) comes back as is, once the whole response is
// read; a failed read is a NetError.
func (s *pop3Session) lines(label string, fn func(line string) error) error {
	var fnErr error
	err := readLines(s.r, func(line string) error {
		fnErr = fn(line)
		return fnErr
	})
	if err != nil && err != fnErr {
		return &NetError{Op: "POP3 " + label, Err: err}
	}
	return err
}
