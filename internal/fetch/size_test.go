package fetch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// bigMail is a message of about size bytes.
func bigMail(size int) string {
	head := "From: Scanner <scan@example.org>\r\nTo: support@example.com\r\nSubject: Scan of the contract\r\n" +
		"Message-ID: <big@example.org>\r\nDate: Mon, 16 Nov 2026 09:00:00 +0100\r\n\r\n"
	line := strings.Repeat("x", 76) + "\r\n"
	return head + strings.Repeat(line, size/len(line))
}

// requireOversizedStub checks the row of an oversized message: header
// only, the real size, and a parse_error telling the admin what to do.
func requireOversizedStub(t *testing.T, db *store.DB, size int) {
	t.Helper()
	var row struct {
		Raw          []byte
		RawTruncated bool
		SizeBytes    int64
		Subject      string
		ParseError   string
	}
	require.NoError(t, db.QueryRow(context.Background(),
		"SELECT raw, raw_truncated, size_bytes, subject, parse_error FROM ticket_messages WHERE message_id = '<big@example.org>'",
		nil, &row.Raw, &row.RawTruncated, &row.SizeBytes, &row.Subject, &row.ParseError))
	require.True(t, row.RawTruncated)
	require.Equal(t, int64(size), row.SizeBytes)
	require.Equal(t, "Scan of the contract", row.Subject)
	require.True(t, strings.HasPrefix(string(row.Raw), "From: Scanner"), "raw holds the header")
	require.Less(t, len(row.Raw), 1024)
	require.Contains(t, row.ParseError, "over this mailbox's limit of 300000 bytes")
	require.Contains(t, row.ParseError, "Do this:")
}

func TestOversizedMessageIsLeftOnTheServer(t *testing.T) {
	t.Parallel()
	t.Run("imap", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			b := setup(t, db)
			const user = "big@example.com"
			id := b.addMailbox(t, "Big", user, b.tokens.IssueRefreshToken(clientID, user),
				"after_fetch", "delete", "max_message_bytes", "300000")
			big := bigMail(400_000)
			b.deliver(t, user, mail(1, ""), big, mail(2, ""))
			for range 2 {
				sum, err := b.runner.RunOnce(context.Background())
				require.NoError(t, err)
				require.True(t, sum.OK(), "%v", sum.Failed)
			}
			requireOversizedStub(t, db, len(big))
			require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
			require.Equal(t, 1, folderSize(t, b, user, "INBOX"), "only the oversized message stays")
		})
	})
	t.Run("pop3", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			b := setupPOP3(t, db, "delete")
			require.NoError(t, db.Exec(context.Background(), "UPDATE mailboxes SET max_message_bytes = 300000 WHERE id = ?", b.id))
			big := bigMail(400_000)
			var bigUIDL string
			for _, raw := range []string{popMail(1), big, popMail(2)} {
				uidl, err := b.pop.Deliver("pop@example.com", []byte(raw))
				require.NoError(t, err)
				if raw == big {
					bigUIDL = uidl
				}
			}
			for range 2 {
				sum := b.pass(t)
				require.True(t, sum.OK(), "%v", sum.Failed)
			}
			requireOversizedStub(t, db, len(big))
			require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", b.id))
			require.Equal(t, []string{bigUIDL}, b.pop.Messages("pop@example.com"), "only the oversized message stays")
		})
	})
}
