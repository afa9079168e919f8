package mailbox

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tracePassword is not ASCII, so go-imap sends it as a literal; the
// scripted server does not offer LITERAL+, so the literal is synchronizing
// and goes out after the server's "+" (RFC 9051 section 4.3).
const tracePassword = "pässwörd-Secret-1234"

var scriptLiteral = regexp.MustCompile(`\{([0-9]+)\}$`)

// scriptServer serves each connection to the returned address from a
// goroutine of its own, as a real server does: it sends greeting, then
// answers each command line with answer's reply ("" for none). A line
// announcing a synchronizing literal gets "+ Ready" and the literal is
// read into the line. A reply ending in "\x00" closes the connection.
func scriptServer(t *testing.T, greeting string, answer func(line string) string) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				serveScript(c, greeting, answer)
			}()
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

func serveScript(c net.Conn, greeting string, answer func(string) string) {
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, greeting); err != nil {
		return
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		for m := scriptLiteral.FindStringSubmatch(line); m != nil; m = scriptLiteral.FindStringSubmatch(line) {
			n, _ := strconv.Atoi(m[1])
			if _, err := io.WriteString(c, "+ Ready for literal data\r\n"); err != nil {
				return
			}
			lit := make([]byte, n)
			if _, err := io.ReadFull(br, lit); err != nil {
				return
			}
			rest, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = line[:len(line)-len(m[0])] + string(lit) + strings.TrimRight(rest, "\r\n")
		}
		reply := answer(line)
		if _, err := io.WriteString(c, strings.TrimSuffix(reply, "\x00")); err != nil || strings.HasSuffix(reply, "\x00") {
			return
		}
	}
}

// imapScriptServer answers LOGIN (tracePassword is right), AUTHENTICATE
// (with authReply, "$T" the tag and "$IR" the initial response sent),
// SELECT, UID FETCH, CAPABILITY and LOGOUT.
func imapScriptServer(t *testing.T, authReply string) (string, int) {
	t.Helper()
	return scriptServer(t, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\r\n", func(line string) string {
		if line == "" || line == "=" { // the empty response to an error challenge, as go-imap sends it
			return "T1 NO [AUTHENTICATIONFAILED] Invalid token\r\n"
		}
		tag, cmd, _ := strings.Cut(line, " ")
		verb, args, _ := strings.Cut(cmd, " ")
		var reply string
		switch strings.ToUpper(verb) {
		case "LOGIN":
			reply = "$T NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"
			if strings.HasSuffix(args, " "+tracePassword) {
				reply = "$T OK [CAPABILITY IMAP4rev1] Logged in\r\n"
			}
		case "AUTHENTICATE":
			_, ir, _ := strings.Cut(args, " ")
			reply = strings.ReplaceAll(authReply, "$IR", ir)
		case "SELECT":
			reply = "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\n* OK [UIDNEXT 2] next\r\n$T OK [READ-WRITE] SELECT completed\r\n"
		case "UID":
			reply = "* 1 FETCH (UID 1 RFC822.SIZE 10)\r\n$T OK FETCH completed\r\n"
		case "CAPABILITY":
			reply = "* CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2\r\n$T OK done\r\n"
		case "LOGOUT":
			reply = "* BYE bye\r\n$T OK done\r\n\x00"
		default:
			reply = "$T BAD unknown command\r\n"
		}
		return strings.ReplaceAll(reply, "$T", tag)
	})
}

// syncBuffer is a trace writer safe for the session's two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestIMAPTraceLiteralPassword: the review's race (the password literal
// traced in clear in 299 of 300 runs) must not happen in any of 50.
func TestIMAPTraceLiteralPassword(t *testing.T) {
	t.Parallel()
	host, port := imapScriptServer(t, "")
	for i := range 50 {
		var trace syncBuffer
		acct := Account{Protocol: "imap", Host: host, Port: port, Security: Plain, AllowPlaintext: true,
			Username: "support@example.com", Password: tracePassword}
		s, err := Open(context.Background(), acct, &Options{CommandTimeout: 5 * time.Second, DebugWriter: &trace})
		require.NoError(t, err, "run %d", i)
		_, err = s.List(context.Background(), Cursor{})
		require.NoError(t, err, "run %d", i)
		require.NoError(t, s.Close(), "run %d", i)
		got := trace.String()
		for _, want := range []string{
			"S: * OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\n",
			"C: T1 LOGIN [redacted]\n", "S: + Ready for literal data\n", "C: [redacted]\n",
			"S: T1 OK [CAPABILITY IMAP4rev1] Logged in\n",
			"C: T2 SELECT INBOX\n", "S: T2 OK [READ-WRITE] SELECT completed\n",
			"C: T3 UID FETCH 1:* (UID RFC822.SIZE)\n", "S: * 1 FETCH (UID 1 RFC822.SIZE 10)\n",
		} {
			require.Contains(t, got, want, "run %d", i)
		}
		requireNoSecret(t, got, "pässw", "Secret-1234", tracePassword)
		requirePrefixed(t, got)
	}
}

func TestIMAPTraceLoginRefused(t *testing.T) {
	t.Parallel()
	host, port := imapScriptServer(t, "")
	var trace syncBuffer
	acct := Account{Protocol: "imap", Host: host, Port: port, Security: Plain, AllowPlaintext: true,
		Username: "support@example.com", Password: "wrong-" + tracePassword}
	_, err := Open(context.Background(), acct, &Options{CommandTimeout: 5 * time.Second, DebugWriter: &trace})
	require.True(t, IsAuth(err), "%v", err)
	got := trace.String()
	require.Contains(t, got, "C: T1 LOGIN [redacted]\nS: + Ready for literal data\nC: [redacted]\nS: T1 NO [AUTHENTICATIONFAILED] Invalid credentials\n")
	requireNoSecret(t, got, "pässw", "Secret-1234")
	requireNoSecret(t, err.Error(), "Secret-1234")
	requirePrefixed(t, got)
}

// TestIMAPTraceEchoedXOAUTH2: a server that echoes the initial response or
// the token must not get either into the trace.
func TestIMAPTraceEchoedXOAUTH2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reply, want string
	}{
		{"BAD echoing the response", "$T BAD Unknown command: $IR\r\n", "S: T1 BAD Unknown command: [redacted]\n"},
		{"NO quoting the token", "$T NO token " + fuzzToken + " expired\r\n", "S: T1 NO token [redacted] expired\n"},
		{"error challenge, then NO", "+ eyJzdGF0dXMiOiI0MDEifQ==\r\n", "C: [redacted]\nS: T1 NO [AUTHENTICATIONFAILED] Invalid token\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host, port := imapScriptServer(t, tt.reply)
			for i := range 50 {
				var trace syncBuffer
				acct := Account{Protocol: "imap", Host: host, Port: port, Security: Plain, AllowPlaintext: true,
					Username: fuzzUser, AccessToken: fuzzToken}
				opts := &Options{CommandTimeout: 300 * time.Millisecond, DebugWriter: &trace}
				_, err := Open(context.Background(), acct, opts)
				require.Error(t, err)
				got := trace.String()
				require.Contains(t, got, "C: T1 AUTHENTICATE XOAUTH2 [redacted]\n", "run %d", i)
				require.Contains(t, got, tt.want, "run %d", i)
				if piece := leaked(got); piece != "" {
					t.Fatalf("run %d: the trace shows the token (%q):\n%s", i, piece, got)
				}
				requireNoSecret(t, got, fuzzIR[:16])
				requirePrefixed(t, got)
			}
		})
	}
}

// TestPOP3TraceEchoedXOAUTH2: the POP3 trace hides a response the server
// echoes in its -ERR.
func TestPOP3TraceEchoedXOAUTH2(t *testing.T) {
	t.Parallel()
	authing := false
	var mu sync.Mutex
	host, port := scriptServer(t, "+OK POP3 ready\r\n", func(line string) string {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case authing:
			authing = false
			return "-ERR Unknown command: " + line + "\r\n"
		case strings.HasPrefix(line, "AUTH XOAUTH2 "):
			return "-ERR Unknown command: " + strings.TrimPrefix(line, "AUTH XOAUTH2 ") + "\r\n"
		case line == "AUTH XOAUTH2":
			authing = true
			return "+ \r\n"
		case line == "CAPA":
			return "+OK\r\nSASL XOAUTH2\r\nUSER\r\n.\r\n"
		case line == "QUIT":
			return "+OK bye\r\n\x00"
		}
		return "-ERR Unknown command: " + line + "\r\n"
	})
	var trace syncBuffer
	acct := Account{Protocol: "pop3", Host: host, Port: port, Security: Plain, AllowPlaintext: true,
		Username: fuzzUser, AccessToken: fuzzToken}
	_, err := Open(context.Background(), acct, &Options{CommandTimeout: 2 * time.Second, DebugWriter: &trace})
	require.Error(t, err)
	got := trace.String()
	require.Contains(t, got, "AUTH XOAUTH2")
	require.Contains(t, got, "-ERR Unknown command: [redacted]\n")
	if piece := leaked(got); piece != "" {
		t.Fatalf("the trace shows the token (%q):\n%s", piece, got)
	}
	requireNoSecret(t, got, fuzzIR[:16])
}

func requireNoSecret(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		require.NotContains(t, s, secret)
	}
}

// requirePrefixed checks that every line of an IMAP trace says who sent it.
func requirePrefixed(t *testing.T, trace string) {
	t.Helper()
	for _, line := range strings.SplitAfter(trace, "\n") {
		if line != "" && !strings.HasPrefix(line, "C: ") && !strings.HasPrefix(line, "S: ") {
			require.Fail(t, fmt.Sprintf("line %q without C: or S:", line), trace)
		}
	}
}
