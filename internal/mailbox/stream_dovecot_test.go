package mailbox_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
)

// TestDovecotStream streams 200 messages of 1 byte to 200 KB from a real
// Dovecot: byte for byte and in order, over IMAP in one UID FETCH and
// over POP3 with the RETRs pipelined (Dovecot offers PIPELINING).
func TestDovecotStream(t *testing.T) {
	t.Parallel()
	d := startPOP3Dovecot(t)
	tests := []struct {
		name     string
		protocol string
		listener string
		// finalCRLF: Dovecot's POP3 adds the final CRLF a message lacks.
		finalCRLF bool
		// check counts the fetch commands in the trace and, for POP3,
		// checks that they were pipelined.
		check func(t *testing.T, trace string)
	}{
		{name: "imap", protocol: "imap", listener: "imaps", check: func(t *testing.T, trace string) {
			require.Equal(t, 1, countLines(trace, func(l string) bool {
				return strings.HasPrefix(l, "C: ") && strings.Contains(l, "BODY.PEEK[]")
			}), "one UID FETCH for the whole batch")
		}},
		{name: "pop3", protocol: "pop3", listener: "pop3s", finalCRLF: true, check: func(t *testing.T, trace string) {
			require.Contains(t, trace, "\nPIPELINING\n", "Dovecot offers PIPELINING")
			require.Equal(t, 200, countLines(trace, func(l string) bool { return strings.HasPrefix(l, "RETR ") }))
			// Pipelined: RETRs traced back to back, before any reply.
			require.Contains(t, trace, "\nRETR 1\nRETR 2\nRETR 3\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			userName := "stream-" + tt.name + "@example.com"
			raws := make([][]byte, 200)
			for i := range raws {
				raws[i] = streamMessage(i, streamSizes[i%len(streamSizes)], tt.finalCRLF || i%2 == 1)
				require.NoError(t, d.Deliver(userName, raws[i]))
			}
			var trace bytes.Buffer
			acct := mailbox.Account{
				Protocol: tt.protocol, Host: "127.0.0.1", Port: d.Ports[tt.listener], Security: mailbox.TLS,
				Username: userName, AccessToken: goodToken + ":" + userName,
			}
			opts := &mailbox.Options{TLSConfig: &tls.Config{RootCAs: d.Cert.Pool}, CommandTimeout: 20 * time.Second, DebugWriter: &trace}
			ctx := context.Background()
			s, err := mailbox.Open(ctx, acct, opts)
			require.NoError(t, err, d.Log())
			list, err := s.List(ctx, mailbox.Cursor{})
			require.NoError(t, err)
			require.Len(t, list.Messages, len(raws))
			got, err := collect(ctx, s, list.Messages, 0)
			require.NoError(t, err)
			require.Len(t, got, len(raws))
			for i, g := range got {
				require.Equal(t, list.Messages[i].Key, g.key)
				require.NoError(t, g.err)
				// Maildir delivery order is Dovecot's listing order only up
				// to the file names; match by the Message-ID line.
				want := raws[messageIndex(t, g.raw)]
				require.True(t, bytes.Equal(want, g.raw), "message %d not byte-exact: %d bytes, want %d", i, len(g.raw), len(want))
			}
			require.NoError(t, s.Close())
			tt.check(t, trace.String())
		})
	}
}

// messageIndex reads i back from streamMessage's "Subject: stream i".
func messageIndex(t *testing.T, raw []byte) int {
	t.Helper()
	_, rest, ok := bytes.Cut(raw, []byte("\r\nSubject: stream "))
	require.True(t, ok, "no Subject in %q", truncated(raw))
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func countLines(text string, match func(string) bool) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if match(sc.Text()) {
			n++
		}
	}
	return n
}

// TestDovecotIMAPStreamExpunged: a message another session expunged
// between List and Stream comes with ErrGone, the rest intact.
func TestDovecotIMAPStreamExpunged(t *testing.T) {
	t.Parallel()
	d := startPOP3Dovecot(t)
	const userName = "stream-expunged@example.com"
	raws := make([][]byte, 20)
	for i := range raws {
		raws[i] = streamMessage(i, 4<<10, true)
		require.NoError(t, d.Deliver(userName, raws[i]))
	}
	acct := mailbox.Account{
		Protocol: "imap", Host: "127.0.0.1", Port: d.Ports["imaps"], Security: mailbox.TLS,
		Username: userName, AccessToken: goodToken + ":" + userName,
	}
	opts := &mailbox.Options{TLSConfig: &tls.Config{RootCAs: d.Cert.Pool}, CommandTimeout: 20 * time.Second}
	ctx := context.Background()
	s, err := mailbox.Open(ctx, acct, opts)
	require.NoError(t, err, d.Log())
	defer s.Close()
	list, err := s.List(ctx, mailbox.Cursor{})
	require.NoError(t, err)
	require.Len(t, list.Messages, len(raws))

	other, err := mailbox.Open(ctx, acct, opts)
	require.NoError(t, err)
	_, err = other.List(ctx, mailbox.Cursor{})
	require.NoError(t, err)
	gone := []string{list.Messages[3].Key, list.Messages[4].Key, list.Messages[19].Key}
	_, err = other.Apply(ctx, mailbox.Delete, "", gone)
	require.NoError(t, err)
	require.NoError(t, other.Close())

	got, err := collect(ctx, s, list.Messages, 0)
	require.NoError(t, err, d.Log())
	require.Len(t, got, len(raws), summary(got))
	for i, g := range got {
		require.Equal(t, list.Messages[i].Key, g.key)
		if i == 3 || i == 4 || i == 19 {
			require.ErrorIs(t, g.err, mailbox.ErrGone, "message %d", i)
			continue
		}
		require.NoError(t, g.err, "message %d", i)
		require.Equal(t, raws[messageIndex(t, g.raw)], g.raw)
	}
}
