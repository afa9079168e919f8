package mailbox_test

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
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
			acct := mailbox.Account{Protocol: "imap", Host: host, Port: p, Security: mailbox.Plain, Username: "u", Password: "p"}
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
