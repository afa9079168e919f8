package mailbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// imapScript is what a fuzzed IMAP server answers to each command: every
// response up to and including the tagged one, "$T" standing for the
// command's tag; the answer to AUTHENTICATE with the markers of
// expandMarkers, and whole: a SASL response line gets no answer.
type imapScript struct {
	auth, sel, list, body, search, apply []byte
}

const (
	imapGreeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN UIDPLUS MOVE] IMAP server ready\r\n"
	imapAuthOK   = "$T OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE IDLE] Logged in\r\n"
)

// imapTag matches the tags go-imap sends.
var imapTag = regexp.MustCompile(`^T[0-9]+$`)

func (sc *imapScript) answer(line []byte) ([]byte, bool) {
	tag, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !imapTag.Match(tag) {
		return nil, false
	}
	cmd := strings.ToUpper(string(rest))
	var reply []byte
	switch {
	case strings.HasPrefix(cmd, "AUTHENTICATE "), strings.HasPrefix(cmd, "LOGIN "):
		reply = expandSecrets(sc.auth)
	case strings.HasPrefix(cmd, "SELECT "), strings.HasPrefix(cmd, "EXAMINE "):
		reply = sc.sel
	case strings.HasPrefix(cmd, "UID FETCH ") && strings.Contains(cmd, "BODY"):
		reply = sc.body
	case strings.HasPrefix(cmd, "UID FETCH "):
		reply = sc.list
	case strings.HasPrefix(cmd, "UID SEARCH "):
		reply = sc.search
	case strings.HasPrefix(cmd, "UID STORE "), strings.HasPrefix(cmd, "UID EXPUNGE "), cmd == "EXPUNGE",
		strings.HasPrefix(cmd, "UID MOVE "), strings.HasPrefix(cmd, "UID COPY "):
		reply = sc.apply
	case cmd == "LOGOUT":
		reply = []byte("* BYE Logging out\r\n$T OK Logout completed.\r\n")
	case cmd == "CAPABILITY":
		reply = []byte("* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n$T OK done\r\n")
	default:
		reply = []byte("$T OK done\r\n")
	}
	reply = append([]byte{}, expandTag(reply, string(tag))...)
	return reply, awaitsMore(reply, tag)
}

// awaitsMore reports whether, after reply, the client may rightly wait for
// the server: the reply holds the tagged line that ends its command,
// whole and outside any literal. Otherwise the script has cut the answer
// short, and fuzzConn ends the connection once the client has read it, so
// that the client fails at once rather than at its command timeout.
func awaitsMore(reply, tag []byte) bool {
	for {
		line, rest, ok := bytes.Cut(reply, []byte("\n"))
		if !ok {
			return false
		}
		if bytes.HasPrefix(line, append(tag, ' ')) {
			return true
		}
		if m := imapLiteral.FindSubmatch(bytes.TrimSuffix(line, []byte("\r"))); m != nil {
			n, err := strconv.Atoi(string(m[1]))
			if err != nil || n > len(rest) {
				return false
			}
			rest = rest[n:]
		}
		reply = rest
	}
}

// imapLiteral matches the end of a line that announces a literal.
var imapLiteral = regexp.MustCompile(`~?\{([0-9]+)\+?\}$`)

// openFuzzIMAP starts a session over conn as openIMAP does over TCP.
func openFuzzIMAP(t *testing.T, conn *fuzzConn, opts *Options) (*imapSession, error) {
	t.Helper()
	acct := Account{Protocol: "imap", Host: "imap.example.com", Port: 143, Security: Plain,
		Username: fuzzUser, AccessToken: fuzzToken, AllowPlaintext: true}
	dc := newDeadlineConn(conn, opts.commandTimeout())
	dc.arm()
	s := &imapSession{acct: acct, conn: dc, folder: "INBOX"}
	var err error
	within(t, "IMAP login", func() {
		err = s.run(context.Background(), func() error { return s.start(acct, opts) })
	})
	if err != nil {
		_ = dc.Close()
		return nil, err
	}
	return s, nil
}

// fuzzIMAPTimeout is the command timeout of the IMAP targets: short, since
// a reply whose literal is longer than what follows it leaves go-imap
// waiting for bytes that never come until the deadline.
const fuzzIMAPTimeout = 100 * time.Millisecond

// FuzzIMAPSession drives an IMAP session (List, Fetch, FetchHeader, Apply,
// Close) against a server that greets and logs in properly and then
// answers SELECT, UID FETCH (the listing), UID FETCH BODY.PEEK[] (the
// literal), UID SEARCH and the STORE/EXPUNGE/MOVE of Apply with the fuzz
// input. Every call must return within its bound without panicking, and
// what List and Fetch return must hold together.
func FuzzIMAPSession(f *testing.F) {
	// Dovecot.
	f.Add([]byte("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Flags permitted.\r\n"+
		"* 2 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1714000000] UIDs valid\r\n* OK [UIDNEXT 3] Predicted next UID\r\n$T OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n"),
		[]byte("* 1 FETCH (UID 1 RFC822.SIZE 60)\r\n* 2 FETCH (UID 2 RFC822.SIZE 30)\r\n$T OK Fetch completed (0.001 + 0.000 secs).\r\n"),
		[]byte("* 1 FETCH (UID 1 BODY[] {31}\r\nSubject: hi\r\n\r\n.dot line\r\nend\r\n)\r\n$T OK Fetch completed.\r\n"),
		[]byte("* SEARCH 1\r\n$T OK Search completed.\r\n"),
		[]byte("* 1 EXPUNGE\r\n$T OK Expunge completed.\r\n"),
		uint8(2))
	// Exchange Online: RFC822.SIZE an estimate, BODY[] a different size,
	// the session invalidated mid-fetch.
	f.Add([]byte("* 1 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)\r\n"+
		"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)] Permanent flags\r\n* OK [UNSEEN 1] Is the first unseen message\r\n"+
		"* OK [UIDVALIDITY 14] UIDVALIDITY value\r\n* OK [UIDNEXT 42] The next unique identifier value\r\n$T OK [READ-WRITE] SELECT completed.\r\n"),
		[]byte("* 1 FETCH (UID 41 RFC822.SIZE 5000)\r\n$T OK FETCH completed.\r\n"),
		[]byte("* BYE Session invalidated - AccessTokenExpired\r\n"),
		[]byte("* SEARCH\r\n$T OK SEARCH completed.\r\n"),
		[]byte("$T OK [COPYUID 14 41 7] MOVE completed.\r\n"),
		uint8(2))
	// Gmail: a body larger than the cap, a message gone before FETCH.
	f.Add([]byte("* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing \\*)] Flags permitted.\r\n"+
		"* OK [UIDVALIDITY 1] UIDs valid.\r\n* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UIDNEXT 8] Predicted next UID.\r\n* OK [HIGHESTMODSEQ 1234]\r\n$T OK [READ-WRITE] INBOX selected. (Success)\r\n"),
		[]byte("* 1 FETCH (UID 5 RFC822.SIZE 2000)\r\n* 2 FETCH (UID 6 RFC822.SIZE 10)\r\n* 3 FETCH (UID 7 RFC822.SIZE 10)\r\n$T OK Success\r\n"),
		[]byte("* 1 FETCH (UID 5 BODY[] {2000}\r\n"+strings.Repeat("x", 1998)+"\r\n)\r\n$T OK Success\r\n"),
		[]byte("* SEARCH\r\n$T OK SEARCH completed (Success)\r\n"),
		[]byte("$T OK Success\r\n"),
		uint8(3))
	// Refusals and junk.
	f.Add([]byte("$T NO [NONEXISTENT] Unknown Mailbox: INBOX (Failure)\r\n"), []byte{}, []byte{}, []byte{}, []byte{}, uint8(3))
	f.Add([]byte("* 1 EXISTS\r\n* OK [UIDVALIDITY 7]\r\n$T OK\r\n"),
		[]byte("* 1 FETCH (UID 9 RFC822.SIZE -1)\r\n$T OK\r\n"),
		[]byte("* 1 FETCH (UID 9 BODY[] {999}\r\nshort)\r\n$T OK\r\n"),
		[]byte("$T BAD no\r\n"), []byte("* BYE\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, sel, list, body, search, apply []byte, action uint8) {
		sc := &imapScript{auth: []byte(imapAuthOK), sel: sel, list: list, body: body, search: search, apply: apply}
		conn := newFuzzConn([]byte(imapGreeting), true, sc.answer)
		opts := &Options{CommandTimeout: fuzzIMAPTimeout}
		s, err := openFuzzIMAP(t, conn, opts)
		if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || strings.Contains(err.Error(), "i/o timeout")) {
			return // a machine too busy to log in within the short timeout
		}
		if err != nil {
			t.Fatalf("login refused: %v", err) // the script's login is valid
		}
		defer func() { _ = s.Abort() }()
		runIMAPCalls(t, s, conn, Action([]Action{Keep, MarkSeen, Delete, Move}[action%4]))
	})
}

// runIMAPCalls makes every call of a logged-in session and checks what
// comes back.
func runIMAPCalls(t *testing.T, s *imapSession, conn *fuzzConn, action Action) {
	ctx := context.Background()
	var (
		list Listing
		err  error
	)
	within(t, "List", func() { list, err = s.List(ctx, Cursor{UIDValidity: 1, LastUID: 4}) })
	if err == nil {
		requireIMAPListing(t, list, s)
	}
	var keys []string
	for i, m := range list.Messages {
		if i == 2 {
			break
		}
		keys = append(keys, m.Key)
		m.MaxBytes = 1 << 10
		var raw []byte
		within(t, "Fetch", func() { raw, err = s.Fetch(ctx, m) })
		var tooLarge *TooLargeError
		switch {
		case err == nil && int64(len(raw)) > m.MaxBytes:
			t.Fatalf("Fetch returned %d bytes, over MaxBytes %d", len(raw), m.MaxBytes)
		case err == nil && len(raw) > conn.servedBytes():
			t.Fatalf("Fetch returned %d bytes; the server sent %d", len(raw), conn.servedBytes())
		case err != nil && raw != nil:
			t.Fatalf("Fetch returned %d bytes with an error: %v", len(raw), err)
		case errors.As(err, &tooLarge) && tooLarge.Size <= m.MaxBytes:
			t.Fatalf("TooLargeError of %d bytes for a limit of %d", tooLarge.Size, m.MaxBytes)
		}
		within(t, "FetchHeader", func() { raw, err = s.FetchHeader(ctx, m) })
		if len(raw) > MaxHeaderBytes || len(raw) > conn.servedBytes() {
			t.Fatalf("FetchHeader returned %d bytes", len(raw))
		}
	}
	within(t, "Apply", func() { _, err = s.Apply(ctx, action, "Archive", keys) })
	within(t, "Close", func() { err = s.Close() })
}

// requireIMAPListing checks a listing: the folder's UIDVALIDITY in the
// cursor and the keys, UIDs above the cursor's (reset when UIDVALIDITY
// changed), oldest first.
func requireIMAPListing(t *testing.T, list Listing, s *imapSession) {
	t.Helper()
	if list.Cursor.UIDValidity != s.selected.UIDValidity || list.Complete {
		t.Fatalf("listing cursor %+v, complete %v; UIDVALIDITY %d", list.Cursor, list.Complete, s.selected.UIDValidity)
	}
	if !strings.HasPrefix(list.KeyPrefix, "imap:INBOX:") || !utf8.ValidString(list.KeyPrefix) {
		t.Fatalf("key prefix %q", list.KeyPrefix)
	}
	for i, m := range list.Messages {
		if m.UID <= list.Cursor.LastUID || i > 0 && m.UID < list.Messages[i-1].UID {
			t.Fatalf("UIDs out of order or at or below the cursor %+v: %+v", list.Cursor, list.Messages)
		}
		if !strings.HasPrefix(m.Key, list.KeyPrefix) || m.Cursor.LastUID != m.UID || m.Size < 0 {
			t.Fatalf("message %+v in listing %+v", m, list.Cursor)
		}
	}
}

// FuzzByeAndTrace feeds the same server bytes, in pieces of the fuzzed
// sizes, to the two things that read them as they come: deadlineConn,
// which keeps the last bytes for the reason of a "* BYE" (conn.go), and
// the redactor of the protocol trace (redact.go). The tail must be the
// last bytes read, whatever the pieces; the BYE reason one line of it; the
// trace the same as when the bytes come in one piece, one line out for
// each line in.
func FuzzByeAndTrace(f *testing.F) {
	f.Add([]byte("* OK ready\r\nT1 OK done\r\n* BYE Session invalidated - AccessTokenExpired\r\n"), []byte{3, 7, 200})
	f.Add([]byte("* BYE Autologout; idle for too long\r\n* BYE \r\n"), []byte{1})
	f.Add([]byte(strings.Repeat("* 1 FETCH (UID 1)\r\n", 40)+"* BYE cut"), []byte{255, 255, 0})
	f.Add([]byte("T1 LOGIN support@example.com {15}\r\nGrüße-geheim-42\r\nT1 OK LOGIN completed\r\n"), []byte{5, 5})
	f.Add([]byte("AUTH XOAUTH2\r\n+ \r\n"+fuzzIR+"\r\n+OK\r\nUSER a\r\nPASS b\r\n"), []byte{2})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		pieces := split(data, cuts)
		dc := newDeadlineConn(&piecesConn{pieces: slices.Clone(pieces)}, time.Second)
		var got []byte
		buf := make([]byte, 1024)
		for {
			n, err := dc.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read %q, sent %q", got, data)
		}
		want := data[max(0, len(data)-tailSize):]
		if !bytes.Equal(dc.tail, want) {
			t.Fatalf("tail %q, want the last %d bytes %q", dc.tail, len(want), want)
		}
		bye := dc.bye()
		if strings.Contains(bye, "\r\n") || bye != "" && !bytes.Contains(want, []byte("* BYE "+bye)) {
			t.Fatalf("bye() = %q from tail %q", bye, want)
		}

		var whole, pieced bytes.Buffer
		_, _ = (&redactor{out: &whole}).Write(data)
		r := &redactor{out: &pieced}
		for _, p := range pieces {
			_, _ = r.Write(p)
		}
		if !bytes.Equal(whole.Bytes(), pieced.Bytes()) {
			t.Fatalf("trace in pieces %q, whole %q", pieced.Bytes(), whole.Bytes())
		}
		if n, m := bytes.Count(data, []byte("\n")), bytes.Count(whole.Bytes(), []byte("\n")); n != m {
			t.Fatalf("%d lines in, %d lines out: %q", n, m, whole.Bytes())
		}
	})
}

// split cuts data into pieces of the sizes in cuts (each at least 1),
// the last piece taking the rest.
func split(data, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		n := min(int(c)+1, len(data))
		if n == 0 {
			break
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	if len(data) > 0 {
		out = append(out, data)
	}
	return out
}

// piecesConn is a connection that reads pieces, one per Read, then EOF.
// Only Read and SetDeadline are used.
type piecesConn struct {
	net.Conn
	pieces [][]byte
}

func (c *piecesConn) Read(p []byte) (int, error) {
	if len(c.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.pieces[0])
	if c.pieces[0] = c.pieces[0][n:]; len(c.pieces[0]) == 0 {
		c.pieces = c.pieces[1:]
	}
	return n, nil
}

func (c *piecesConn) SetDeadline(time.Time) error { return nil }
