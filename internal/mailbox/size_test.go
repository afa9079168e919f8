package mailbox_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

// TestFetchCapsWhatTheServerUnderReports: the size a server lists is only
// its word (Exchange estimates RFC822.SIZE). Fetch with MaxBytes keeps at
// most that much, reports the real size, and leaves the session in step
// for the next message. FetchHeader returns the header alone.
func TestFetchCapsWhatTheServerUnderReports(t *testing.T) {
	t.Parallel()
	big := []byte("From: scanner@example.org\r\nSubject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 4000))
	small := message(3)
	check := func(t *testing.T, s mailbox.Session) {
		t.Helper()
		ctx := context.Background()
		list, err := s.List(ctx, mailbox.Cursor{})
		require.NoError(t, err)
		require.Len(t, list.Messages, 2)
		m := list.Messages[0]
		m.Size, m.MaxBytes = 10, 1000 // a server that under-reports
		_, err = s.Fetch(ctx, m)
		var tooLarge *mailbox.TooLargeError
		require.ErrorAs(t, err, &tooLarge)
		require.Equal(t, int64(len(big)), tooLarge.Size)
		head, err := s.FetchHeader(ctx, m)
		require.NoError(t, err)
		require.Equal(t, "From: scanner@example.org\r\nSubject: big\r\n\r\n", string(head))
		next := list.Messages[1]
		next.MaxBytes = 1000
		got, err := s.Fetch(ctx, next)
		require.NoError(t, err, "the session must still be in step")
		require.Equal(t, small, got)
	}
	t.Run("imap", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "tls")
		for _, raw := range [][]byte{big, small} {
			_, err := b.srv.Deliver(user, "INBOX", raw)
			require.NoError(t, err)
		}
		check(t, open(t, b))
	})
	t.Run("pop3", func(t *testing.T) {
		t.Parallel()
		b := setupPOP3(t, mailboxtest.POP3Options{})
		deliver(t, b, big)
		deliver(t, b, small)
		check(t, openPOP3(t, b))
	})
}
