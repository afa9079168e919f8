package fetch_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

// limitsConfig is what the tests configure: low enough for small mails to
// pass, as an admin could set them.
var limitsConfig = ticket.Limits{HeaderFields: 40, Attachments: 2}

// manyAttachments is a message with a text body and n attachments.
func manyAttachments(n int) string {
	var b strings.Builder
	b.WriteString("From: Scanner <scan@example.org>\r\nTo: support@example.com\r\nSubject: Scans\r\n" +
		"Message-ID: <scans@example.org>\r\nDate: Mon, 16 Nov 2026 09:30:00 +0100\r\n" +
		"Content-Type: multipart/mixed; boundary=s\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nScans attached.\r\n")
	for i := range n {
		fmt.Fprintf(&b, "--s\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=scan%d.pdf\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", i, base64.StdEncoding.EncodeToString([]byte(fmt.Sprint("%PDF scan ", i))))
	}
	return b.String() + "--s--\r\n"
}

// manyFields is a reply whose header has n Received fields before the
// rest.
func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Received: from relay%d.example.net by relay%d.example.net\r\n", i, i+1)
	}
	return b.String() + "From: Customer <c1@example.org>\r\nSubject: Re: Question 1\r\nMessage-ID: <loop@example.org>\r\n" +
		"In-Reply-To: <q1@example.org>\r\n\r\nStill broken.\r\n"
}

// limitedRow is a stored message as the ticket system reads it.
type limitedRow struct {
	Raw          []byte
	RawTruncated bool
	Subject      string
	ParseError   string
	TicketID     int64
	Attachments  int64
}

func readLimitedRow(t *testing.T, db *store.DB, messageID string) limitedRow {
	t.Helper()
	var row limitedRow
	require.NoError(t, db.QueryRow(context.Background(),
		`SELECT raw, raw_truncated, subject, COALESCE(parse_error, ''), ticket_id,
			(SELECT count(*) FROM ticket_attachments a WHERE a.ticket_message_id = m.id)
		FROM ticket_messages m WHERE message_id = ?`,
		[]any{messageID}, &row.Raw, &row.RawTruncated, &row.Subject, &row.ParseError, &row.TicketID, &row.Attachments))
	return row
}

// TestMessagesPastLimitsAreStoredWhole: a message past a configured limit
// is stored with its raw bytes intact and a parse_error naming the limit,
// its header still threads, and the mailbox goes on to the next message.
// It was stored whole, so the after-fetch action applies to it as to any.
func TestMessagesPastLimitsAreStoredWhole(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		b.runner.Limits = limitsConfig
		const user = "limits@example.com"
		id := b.addMailbox(t, "Limits", user, b.tokens.IssueRefreshToken(clientID, user), "after_fetch", "delete")
		scans, loop := manyAttachments(3), manyFields(50)
		b.deliver(t, user, mail(1, ""), scans, loop, mail(2, ""))

		sum, err := b.runner.RunOnce(context.Background())
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, 4, sum.Runs[0].MessagesFetched)
		require.Equal(t, int64(4), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
		require.Equal(t, 0, folderSize(t, b, user, "INBOX"), "stored whole, so deleted like the rest")

		row := readLimitedRow(t, db, "<scans@example.org>")
		require.Equal(t, scans, string(row.Raw))
		require.False(t, row.RawTruncated)
		require.Equal(t, "Scans", row.Subject)
		require.Contains(t, row.ParseError, "over the limit FETCHER_MAX_ATTACHMENTS=2: the message has 3 attachments")
		require.Equal(t, int64(2), row.Attachments)

		row = readLimitedRow(t, db, "<loop@example.org>")
		require.Equal(t, loop, string(row.Raw))
		require.Contains(t, row.ParseError, "over the limit FETCHER_MAX_HEADER_FIELDS=40: the header has 54 fields")
		require.Equal(t, "Re: Question 1", row.Subject)
		require.Equal(t, readLimitedRow(t, db, "<q1@example.org>").TicketID, row.TicketID, "the reply joins its ticket")

		require.Empty(t, readLimitedRow(t, db, "<q2@example.org>").ParseError, "the next message parses as usual")
	})
}

// TestHeaderOnlyRowKeepsLimitProblem: the header of a message over the size
// limit is parsed within the limits too, and its problem is kept beside
// the size note.
func TestHeaderOnlyRowKeepsLimitProblem(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	b := setup(t, db)
	b.runner.Limits = limitsConfig
	const user = "bigloop@example.com"
	b.addMailbox(t, "Big loop", user, b.tokens.IssueRefreshToken(clientID, user), "max_message_bytes", "300000")
	big := manyFields(50) + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 5000)
	b.deliver(t, user, big)

	sum, err := b.runner.RunOnce(context.Background())
	require.NoError(t, err)
	require.True(t, sum.OK(), "%v", sum.Failed)
	row := readLimitedRow(t, db, "<loop@example.org>")
	require.True(t, row.RawTruncated)
	require.Contains(t, row.ParseError, "over this mailbox's limit of 300000 bytes")
	require.Contains(t, row.ParseError, "\nover the limit FETCHER_MAX_HEADER_FIELDS=40")
	require.Equal(t, "Re: Question 1", row.Subject)
}

func TestPOP3MessagePastLimitIsStoredWhole(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	b := setupPOP3(t, db, "delete")
	b.runner.Limits = limitsConfig
	scans := manyAttachments(5)
	for _, raw := range []string{popMail(1), scans, popMail(2)} {
		_, err := b.pop.Deliver("pop@example.com", []byte(raw))
		require.NoError(t, err)
	}
	for range 2 {
		sum := b.pass(t)
		require.True(t, sum.OK(), "%v", sum.Failed)
	}
	require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", b.id))
	require.Empty(t, b.pop.Messages("pop@example.com"))
	row := readLimitedRow(t, db, "<scans@example.org>")
	require.Equal(t, scans, string(row.Raw))
	require.Contains(t, row.ParseError, "over the limit FETCHER_MAX_ATTACHMENTS=2: the message has 5 attachments")
}
