package mailbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxPOP3Line bounds a status line or a line of a listing (CAPA, UIDL,
// LIST). RFC 2449 section 4 allows 512 octets; the slack is for servers
// that say more in their -ERR text. Message lines (RETR) have no bound.
const maxPOP3Line = 64 << 10

// replyKind tells the three kinds of line a POP3 server answers with.
type replyKind int

const (
	replyOK   replyKind = iota // "+OK" (RFC 1939 section 3)
	replyErr                   // "-ERR"
	replyMore                  // "+" during AUTH: a SASL continuation (RFC 5034 section 4)
)

// pop3Reply is one line the server answered with, its status indicator
// removed.
type pop3Reply struct {
	kind replyKind
	text string
}

// parseReply reads a status indicator. "+OK" and "-ERR" are upper case in
// RFC 1939 but compared without case, as most clients do.
func parseReply(line string) (pop3Reply, error) {
	switch {
	case hasWord(line, "+OK"):
		return pop3Reply{replyOK, strings.TrimPrefix(line[3:], " ")}, nil
	case hasWord(line, "-ERR"):
		return pop3Reply{replyErr, strings.TrimPrefix(line[4:], " ")}, nil
	case strings.HasPrefix(line, "+"):
		return pop3Reply{replyMore, strings.TrimPrefix(line[1:], " ")}, nil
	}
	return pop3Reply{}, fmt.Errorf("not a POP3 reply: %q", truncate(line, 100))
}

// hasWord reports whether line starts with word, followed by a space or
// nothing.
func hasWord(line, word string) bool {
	return len(line) >= len(word) && strings.EqualFold(line[:len(word)], word) &&
		(len(line) == len(word) || line[len(word)] == ' ')
}

// pop3Error is a -ERR reply: the server understood the command and
// refused it.
type pop3Error struct {
	cmd  string // the command without secrets, e.g. "RETR 3" or "PASS"
	text string
}

func (e *pop3Error) Error() string { return e.cmd + ": -ERR " + e.text }

// code returns the extended response code, e.g. "IN-USE" or "SYS/TEMP",
// upper-cased, or "" (RFC 2449 section 8, RFC 3206).
func (e *pop3Error) code() string {
	rest, ok := strings.CutPrefix(e.text, "[")
	if !ok {
		return ""
	}
	code, _, ok := strings.Cut(rest, "]")
	if !ok {
		return ""
	}
	return strings.ToUpper(code)
}

// temporary reports whether the code says to try again later: the server
// is busy or broken (SYS/TEMP, RFC 3206 section 4), another session holds
// the maildrop (IN-USE) or logins come too often (LOGIN-DELAY, RFC 2449
// section 8.1).
func (e *pop3Error) temporary() bool {
	c := e.code()
	return c == "IN-USE" || c == "LOGIN-DELAY" || c == "SYS/TEMP" || strings.HasPrefix(c, "SYS/TEMP/")
}

// isPOP3Err reports whether err is a -ERR reply.
func isPOP3Err(err error) bool {
	var pe *pop3Error
	return errors.As(err, &pe)
}

// readLine reads one line of at most maxPOP3Line bytes and returns it
// without its line ending (CRLF, or a bare LF from a sloppy server).
func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxPOP3Line {
			return "", fmt.Errorf("line longer than %d bytes", maxPOP3Line)
		}
		switch {
		case err == nil:
			return string(bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

// readLines reads the body of a short multi-line response (CAPA, UIDL,
// LIST) up to its terminating ".", passing each line, unstuffed, to fn.
func readLines(r *bufio.Reader, fn func(line string) error) error {
	var fnErr error
	for {
		line, err := readLine(r)
		if err != nil {
			return err
		}
		if line == "." {
			return fnErr
		}
		if fnErr == nil {
			// After a bad line, keep reading to the end so that the
			// connection stays in step.
			fnErr = fn(strings.TrimPrefix(line, "."))
		}
	}
}

// readBlock copies the body of a multi-line response (RFC 1939 section 3)
// to w byte for byte, up to and without its terminating "." line: every
// line whole however long it is, line endings as sent, and the
// byte-stuffing undone (a line starting with "." has had another "."
// put in front of it).
//
// ReadSlice hands over the buffer's bytes without copying. A line longer
// than the buffer comes in pieces (bufio.ErrBufferFull): only the first
// piece starts a line, so only there is a "." looked at.
func readBlock(r *bufio.Reader, w io.Writer) error {
	atLineStart := true
	for {
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF // the server hung up before the final "."
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if atLineStart && len(chunk) > 0 && chunk[0] == '.' {
			if err == nil && isTerminator(chunk) {
				return nil
			}
			chunk = chunk[1:]
		}
		if _, werr := w.Write(chunk); werr != nil {
			return werr
		}
		atLineStart = err == nil
	}
}

// isTerminator reports whether line is the "." that ends a multi-line
// response. A bare LF is accepted as well as CRLF.
func isTerminator(line []byte) bool {
	return string(line) == ".\r\n" || string(line) == ".\n"
}
