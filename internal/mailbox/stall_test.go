package mailbox_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

// stallingServer speaks just enough IMAP to log in, then never answers:
// the command deadline must end the wait, not the mailbox timeout.
func stallingServer(t *testing.T, stallOn string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"))
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
			if strings.HasPrefix(strings.ToUpper(rest), stallOn) {
				time.Sleep(time.Minute) // a server that hangs
				return
			}
			conn.Write([]byte(tag + " OK done\r\n"))
		}
	}()
	return ln.Addr().String()
}

func TestCommandTimeoutOnStalledServer(t *testing.T) {
	t.Parallel()
	for _, stallOn := range []string{"LOGIN", "SELECT"} {
		t.Run(stallOn, func(t *testing.T) {
			t.Parallel()
			host, port, _ := net.SplitHostPort(stallingServer(t, stallOn))
			p, err := strconv.Atoi(port)
			require.NoError(t, err)
			acct := mailbox.Account{Protocol: "imap", Host: host, Port: p, Security: mailbox.Plain, Username: "u", Password: "p", AllowPlaintext: true}
			opts := &mailbox.Options{CommandTimeout: 300 * time.Millisecond}
			start := time.Now()
			s, err := mailbox.Open(context.Background(), acct, opts)
			if err == nil {
				defer s.Close()
				_, err = s.List(context.Background(), mailbox.Cursor{})
			}
			require.Error(t, err)
			require.True(t, mailbox.IsTemporary(err), "a stalled server is worth retrying: %v", err)
			require.Less(t, time.Since(start), 5*time.Second, "the command deadline must end the wait")
		})
	}
}

// TestCommandTimeoutMidLiteral: a server that stops sending half-way
// through a message body must fail the Fetch within the command timeout,
// as a temporary error that names the message, and never hand back half a
// message; once the server is well again the message comes whole.
func TestCommandTimeoutMidLiteral(t *testing.T) {
	t.Parallel()
	var stall atomic.Bool
	stall.Store(true)
	srv, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{
		StallMidLiteral: func(string) bool { return stall.Load() },
	})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	srv.AddUser("u@example.com", "pw")
	raw := []byte("From: a@example.org\r\nSubject: big\r\n\r\n" + strings.Repeat("line of text\r\n", 2000))
	_, err = srv.Deliver("u@example.com", "INBOX", raw)
	require.NoError(t, err)
	acct := mailbox.Account{Protocol: "imap", Host: srv.Host(), Port: srv.Port(), Security: mailbox.TLS, Username: "u@example.com", Password: "pw"}
	opts := &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}, CommandTimeout: 300 * time.Millisecond}

	fetch := func() ([]byte, error) {
		s, err := mailbox.Open(context.Background(), acct, opts)
		require.NoError(t, err)
		defer s.Close()
		list, err := s.List(context.Background(), mailbox.Cursor{})
		require.NoError(t, err)
		require.Len(t, list.Messages, 1)
		return s.Fetch(context.Background(), list.Messages[0])
	}
	start := time.Now()
	got, err := fetch()
	require.Error(t, err)
	require.Nil(t, got, "half a message must not be returned")
	require.True(t, mailbox.IsTemporary(err), "a stalled server is worth retrying: %v", err)
	require.Contains(t, err.Error(), "read message UID 1")
	require.Less(t, time.Since(start), 5*time.Second, "the command deadline must end the wait")

	stall.Store(false)
	got, err = fetch()
	require.NoError(t, err)
	require.Equal(t, raw, got)
}
