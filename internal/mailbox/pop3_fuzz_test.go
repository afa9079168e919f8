package mailbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// pop3Script is what a fuzzed POP3 server answers to each command: the
// whole answer, status line and any multi-line body; the answer to AUTH
// with the markers of expandMarkers. The greeting is fixed and valid; a
// line that is not a known command (a SASL response, "*") gets no answer.
type pop3Script struct {
	capa, auth, uidl, list, retr, top, dele, quit []byte
	// inStep, when set, reports whether the client has read all that was
	// sent before; retrInStep records it for each RETR.
	inStep     func() bool
	retrInStep []bool
}

func (sc *pop3Script) answer(line []byte) ([]byte, bool) {
	verb, _, _ := bytes.Cut(line, []byte(" "))
	var reply []byte
	switch strings.ToUpper(string(verb)) {
	case "CAPA":
		reply = sc.capa
	case "AUTH":
		return append([]byte{}, expandMarkers(sc.auth, "")...), false
	case "UIDL":
		reply = sc.uidl
	case "LIST":
		reply = sc.list
	case "RETR":
		reply = sc.retr
		if sc.inStep != nil {
			sc.retrInStep = append(sc.retrInStep, sc.inStep())
		}
	case "TOP":
		reply = sc.top
	case "DELE":
		reply = sc.dele
	case "QUIT":
		reply = sc.quit
	default:
		return nil, false
	}
	// A POP3 client reads only after a command, so the server never has
	// more to say than its answer.
	return append([]byte{}, reply...), false
}

// openFuzzPOP3 starts a session over conn as openPOP3 does over TCP.
func openFuzzPOP3(t *testing.T, conn *fuzzConn, opts *Options) (*pop3Session, error) {
	t.Helper()
	acct := Account{Protocol: "pop3", Host: "pop.example.com", Port: 110, Security: Plain,
		Username: fuzzUser, AccessToken: fuzzToken, AllowPlaintext: true}
	dc := newDeadlineConn(conn, opts.commandTimeout())
	dc.arm()
	s := &pop3Session{acct: acct, opts: opts, conn: dc, marked: map[uint32]bool{}}
	s.attach(dc)
	var err error
	within(t, "POP3 login", func() { err = s.run(context.Background(), s.start) })
	if err != nil {
		_ = s.rw.Close()
		return nil, err
	}
	return s, nil
}

const (
	pop3Greeting = "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"
	pop3Capa     = "+OK Capability list follows\r\nTOP\r\nUIDL\r\nSASL XOAUTH2\r\nPIPELINING\r\nUSER\r\n.\r\n"
	pop3AuthOK   = "+ \r\n+OK Logged in.\r\n"
)

// FuzzPOP3Session drives a whole POP3 session (login, List, Fetch,
// FetchHeader, Apply delete, Close) against a server whose answers to
// CAPA, AUTH, UIDL, LIST, RETR, TOP, DELE and QUIT are the fuzz input.
// Every call must return, within its bound, without panicking; no error
// may show the access token, nor may the trace when the server never
// echoed it; what List, Fetch and FetchHeader return must hold together.
func FuzzPOP3Session(f *testing.F) {
	none := []byte{} // a server that says nothing
	// Dovecot.
	f.Add([]byte(pop3Capa), []byte(pop3AuthOK),
		[]byte("+OK\r\n1 00000001575d7fc5\r\n2 00000002575d7fc5\r\n.\r\n"),
		[]byte("+OK 2 messages:\r\n1 52\r\n2 40\r\n.\r\n"),
		[]byte("+OK 52 octets\r\nSubject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n"),
		[]byte("+OK\r\nSubject: hi\r\n\r\n.\r\n"),
		[]byte("+OK Marked to be deleted.\r\n"),
		[]byte("+OK Logging out, messages deleted.\r\n"))
	// Exchange Online: a bare "+" and no PIPELINING; a refused token gets a
	// challenge and then -ERR.
	f.Add([]byte("+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\nUSER\r\n.\r\n"),
		[]byte("+\r\n+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n-ERR Authentication failure: unknown user name or bad password.\r\n"),
		none, none, none, none, none,
		[]byte("+OK Microsoft Exchange Server POP3 server signing off.\r\n"))
	f.Add([]byte(pop3Capa), []byte("+\r\n-ERR Server Unavailable. 21\r\n"), none, none, none, none, none, none)
	// Gmail: UIDL lists, RETR of a message with a dot-only line, then the
	// server hangs up.
	f.Add([]byte("+OK Capability list follows\r\nUSER\r\nRESP-CODES\r\nEXPIRE 0\r\nLOGIN-DELAY 300\r\nTOP\r\nUIDL\r\nX-GOOGLE-RICO\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n"),
		[]byte("+ \r\n+OK Welcome.\r\n"),
		[]byte("+OK\r\n1 GmailId18e1f2a3b4c5d6e7\r\n.\r\n"),
		[]byte("+OK 1 messages (60 bytes)\r\n1 60\r\n.\r\n"),
		[]byte("+OK message follows\r\nFrom: a@example.org\r\n\r\n.\r\n..\r\n.\r\n"),
		[]byte("-ERR [SYS/TEMP] try later\r\n"),
		[]byte("-ERR [IN-USE] locked\r\n"),
		none)
	// Odd servers: duplicate UIDLs, junk lines, a server echoing the
	// response line, an expired token.
	f.Add([]byte("-ERR unknown command\r\n"), []byte("+ \r\n-ERR Unknown command: $IR\r\n"),
		[]byte("+OK\r\n1 a\r\n2 a\r\nbad\r\n.\r\n"), []byte("+OK\r\n1 x\r\n2 -1\r\n.\r\n"),
		[]byte("+OK\r\nno end"), []byte("* OK IMAP4rev1\r\n"), []byte("+\r\n"),
		[]byte("-ERR Session invalidated - AccessTokenExpired\r\n"))
	f.Add([]byte(pop3Capa), []byte("+ user=$TOKEN\r\n+ $IR\r\n-ERR auth=Bearer $TOKEN refused\r\n"),
		none, none, none, none, none, none)
	f.Fuzz(func(t *testing.T, capa, auth, uidl, list, retr, top, dele, quit []byte) {
		sc := &pop3Script{capa: capa, auth: auth, uidl: uidl, list: list, retr: retr, top: top, dele: dele, quit: quit}
		conn := newFuzzConn([]byte(pop3Greeting), false, sc.answer)
		var trace bytes.Buffer
		opts := &Options{CommandTimeout: time.Second, DebugWriter: &trace}
		s, err := openFuzzPOP3(t, conn, opts)
		requireNoLeak(t, "login", err)
		if s != nil {
			// Called inside the client's Write, under conn's lock.
			sc.inStep = func() bool { return s.r.Buffered() == 0 && len(conn.out) == 0 }
			runPOP3Calls(t, s, conn, sc)
		}
		if leaked(string(expandMarkers(auth, ""))) == "" { // the server echoed no secret
			if piece := leaked(trace.String()); piece != "" {
				t.Fatalf("the trace shows the token (%q):\n%s", piece, trace.String())
			}
		}
	})
}

// runPOP3Calls makes every call of a logged-in session and checks what
// comes back.
func runPOP3Calls(t *testing.T, s *pop3Session, conn *fuzzConn, sc *pop3Script) {
	ctx := context.Background()
	var (
		list Listing
		err  error
	)
	within(t, "List", func() { list, err = s.List(ctx, Cursor{}) })
	requireNoLeak(t, "List", err)
	if err == nil {
		requireListing(t, list)
	}
	var keys []string
	for i, m := range list.Messages {
		if i == 3 {
			break
		}
		keys = append(keys, m.Key)
		m.MaxBytes = 1 << 10
		var raw []byte
		retrs := len(sc.retrInStep)
		within(t, "Fetch", func() { raw, err = s.Fetch(ctx, m) })
		requireNoLeak(t, "Fetch", err)
		// A well-formed answer read in step gives the message unstuffed.
		if body, ok := retrBody(sc.retr); ok && len(sc.retrInStep) == retrs+1 && sc.retrInStep[retrs] {
			var tooLarge *TooLargeError
			refused := errors.As(err, &tooLarge) && tooLarge.Size == int64(len(body))
			switch {
			case int64(len(body)) > m.MaxBytes && !refused:
				t.Fatalf("Fetch of %d bytes over MaxBytes %d = %q, %v", len(body), m.MaxBytes, raw, err)
			case int64(len(body)) <= m.MaxBytes && (err != nil || !bytes.Equal(raw, body)):
				t.Fatalf("Fetch = %q, %v; want %q", raw, err, body)
			}
		}
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
		requireNoLeak(t, "FetchHeader", err)
		if len(raw) > MaxHeaderBytes || len(raw) > conn.servedBytes() {
			t.Fatalf("FetchHeader returned %d bytes", len(raw))
		}
	}
	var done []string
	within(t, "Apply", func() { done, err = s.Apply(ctx, Delete, "", keys) })
	requireNoLeak(t, "Apply", err)
	if len(done) != 0 {
		t.Fatalf("Apply(delete) returned %v: POP3 deletes only at QUIT", done)
	}
	within(t, "Close", func() { err = s.Close() })
	requireNoLeak(t, "Close", err)
	if _, err := s.List(ctx, Cursor{}); err == nil {
		t.Fatal("List after Close succeeded")
	}
}

// retrBody returns the message in a RETR answer when the answer is
// well-formed: a "+OK" line, the byte-stuffed lines, and the "." line that
// ends it, and nothing after. It splits lines its own way, unlike
// readBlock, which it checks.
func retrBody(answer []byte) ([]byte, bool) {
	status, rest, ok := bytes.Cut(answer, []byte("\n"))
	if !ok || len(status) > maxPOP3Line || !hasWord(string(bytes.TrimSuffix(status, []byte("\r"))), "+OK") {
		return nil, false
	}
	var body []byte
	ls := bytes.SplitAfter(rest, []byte("\n"))
	for i, l := range ls {
		if string(l) == ".\r\n" || string(l) == ".\n" {
			return body, i == len(ls)-2 && len(ls[i+1]) == 0
		}
		if !bytes.HasSuffix(l, []byte("\n")) {
			return nil, false
		}
		body = append(body, bytes.TrimPrefix(l, []byte("."))...)
	}
	return nil, false
}

// requireListing checks a POP3 listing: complete, every key "pop3:" and a
// UIDL without space or control bytes, keys and message numbers unique,
// oldest first.
func requireListing(t *testing.T, list Listing) {
	t.Helper()
	if list.KeyPrefix != pop3KeyPrefix || !list.Complete {
		t.Fatalf("listing prefix %q, complete %v", list.KeyPrefix, list.Complete)
	}
	keys := map[string]bool{}
	for i, m := range list.Messages {
		uidl, ok := strings.CutPrefix(m.Key, pop3KeyPrefix)
		if !ok || uidl == "" || strings.ContainsFunc(uidl, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			t.Fatalf("bad key %q", m.Key)
		}
		if keys[m.Key] {
			t.Fatalf("key %q listed twice", m.Key)
		}
		keys[m.Key] = true
		if m.UID == 0 || i > 0 && m.UID <= list.Messages[i-1].UID {
			t.Fatalf("message numbers repeated or out of order: %+v", list.Messages)
		}
		if m.Size < 0 {
			t.Fatalf("negative size %d", m.Size)
		}
	}
}

// FuzzReadBlock checks the multi-line reader (pop3_read.go). Any bytes
// read as a multi-line response never panic nor yield more than came in.
// When body is sent as a server must send it, byte-stuffed and ended by
// ".", readBlock returns body exactly (with the CRLF a server adds when
// the body does not end in a line ending) and stops right after the "."; at
// every buffer size, since a line longer than the buffer comes in pieces.
// readLines, on the same response, gets its lines in order.
func FuzzReadBlock(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\n.leading dot\r\n..two\r\n.\r\n"), uint8(0))
	f.Add([]byte("a\nb\r\n.\n. \r\n"), uint8(3))
	f.Add([]byte("no final line ending"), uint8(1))
	f.Add([]byte("."), uint8(2))
	f.Add([]byte(".\r\n.\r\n"), uint8(5))
	f.Add([]byte("bare\rCR\r\n\x00\xff\r\n"), uint8(0))
	f.Add([]byte(strings.Repeat("0123456789", 10)+"\r\n."+strings.Repeat("x", 40)+"\r\n"), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, size uint8) {
		bufSize := 16 + int(size)
		// Whatever the bytes, as they came.
		var got bytes.Buffer
		err := readBlock(bufio.NewReaderSize(bytes.NewReader(body), bufSize), &got)
		if got.Len() > len(body) {
			t.Fatalf("readBlock wrote %d bytes from %d", got.Len(), len(body))
		}
		if err == nil && !bytes.HasPrefix(body, []byte(".\r\n")) && !bytes.HasPrefix(body, []byte(".\n")) &&
			!bytes.Contains(body, []byte("\n.\r\n")) && !bytes.Contains(body, []byte("\n.\n")) {
			t.Fatal("readBlock ended without a terminating line")
		}
		_ = readLines(bufio.NewReaderSize(bytes.NewReader(body), bufSize), func(string) error { return nil })
		if line, err := readLine(bufio.NewReaderSize(bytes.NewReader(body), bufSize)); err == nil {
			r, err := parseReply(line)
			if err == nil && r.kind == replyErr {
				_ = (&pop3Error{cmd: "RETR 1", text: r.text}).temporary()
			}
		}

		// The body sent as a server must send it.
		wire := stuff(body)
		const next = "+OK next reply\r\n"
		r := bufio.NewReaderSize(bytes.NewReader(append(wire, next...)), bufSize)
		got.Reset()
		if err := readBlock(r, &got); err != nil {
			t.Fatalf("readBlock(%q): %v", wire, err)
		}
		want := body
		if len(body) > 0 && body[len(body)-1] != '\n' {
			want = append(append([]byte{}, body...), "\r\n"...)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("readBlock(%q) = %q, want %q", wire, got.Bytes(), want)
		}
		if rest, _ := r.ReadString('\n'); rest != next {
			t.Fatalf("after the block, read %q, want %q", rest, next)
		}

		// readLines sees the same lines, unstuffed, as long as none is
		// longer than it takes.
		if len(want) <= maxPOP3Line {
			var seen []string
			r := bufio.NewReaderSize(bytes.NewReader(wire), bufSize)
			if err := readLines(r, func(line string) error { seen = append(seen, line); return nil }); err != nil {
				t.Fatalf("readLines(%q): %v", wire, err)
			}
			var wantLines []string
			for _, l := range lines(want) {
				wantLines = append(wantLines, string(l))
			}
			if !slices.Equal(seen, wantLines) {
				t.Fatalf("readLines(%q) = %q, want %q", wire, seen, wantLines)
			}
		}
	})
}

// stuff encodes body as the data of a multi-line response (RFC 1939
// section 3): a "." before every line that starts with one, a CRLF after a
// last line without a line ending, and the terminating ".".
func stuff(body []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(body, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}
