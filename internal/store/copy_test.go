package store_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

// corpus is the ticket package's real-world test mail (attachments,
// inline images, bounces, broken MIME, legacy charsets, no Date, ...),
// each message as a Fetched of mb with its file name as source key, then
// the conversation, whose replies join tickets of the same batch.
func corpus(t *testing.T, mb store.Mailbox) []store.Fetched {
	t.Helper()
	files, err := filepath.Glob("../ticket/testdata/*.eml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out []store.Fetched
	for i, name := range files {
		raw, err := os.ReadFile(name)
		require.NoError(t, err)
		f := store.Fetched{MailboxID: mb.ID, SourceKey: filepath.Base(name), Raw: raw,
			Parsed: ticket.Parse(raw), Action: store.ActionMarkSeen}
		if i%7 == 3 {
			f.Size = int64(len(raw)) * 10 // kept header-only, over the limit
		}
		out = append(out, f)
	}
	return append(out, conversation(mb)...) // replies within the batch
}

// messageCount is the number of mb's message rows.
func messageCount(t *testing.T, db *store.DB, mailboxID int64) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRow(context.Background(), "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", []any{mailboxID}, &n))
	return n
}

// rowsOf returns every stored column of mb's messages, their attachments
// and their tickets but the ids, which differ between mailboxes, by source
// key.
func rowsOf(t *testing.T, db *store.DB, mailboxID int64) map[string]string {
	t.Helper()
	ctx := context.Background()
	n := messageCount(t, db, mailboxID)
	out := map[string]string{}
	for i := range n {
		var key, row string
		require.NoError(t, db.QueryRow(ctx, `
			SELECT m.source_key,
			       (to_jsonb(m) - 'id' - 'ticket_id' - 'mailbox_id')::text || ' attachments ' ||
			       coalesce((SELECT jsonb_agg(to_jsonb(a) - 'id' - 'ticket_message_id' ORDER BY a.id)
			                   FROM ticket_attachments a WHERE a.ticket_message_id = m.id)::text, 'none') ||
			       ' ticket ' || (to_jsonb(t) - 'id' - 'mailbox_id')::text
			  FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
			 WHERE m.mailbox_id = ? ORDER BY m.source_key OFFSET ? LIMIT 1`,
			[]any{mailboxID, i}, &key, &row))
		out[key] = row
	}
	return out
}

// TestBatchRowsAreTheRowsSaveWrites: the rows SaveBatch writes with COPY
// and deferred ticket INSERTs and UPDATEs are, column for column, the
// rows Save writes with an INSERT each, for real mail with attachments,
// NULLs, header-only rows and parse errors.
func TestBatchRowsAreTheRowsSaveWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	fixed := time.Date(2026, 11, 23, 8, 0, 0, 123456000, time.UTC)
	db.Now = func() time.Time { return fixed }

	one := newMailbox(t, db, "one at a time")
	var saved []store.Saved
	for _, f := range corpus(t, one) {
		s, err := db.Tickets().Save(ctx, f)
		require.NoError(t, err, f.SourceKey)
		saved = append(saved, s)
	}
	batched := newMailbox(t, db, "batched")
	fs := corpus(t, batched)
	out, err := db.Tickets().SaveBatch(ctx, fs)
	require.NoError(t, err)

	require.Len(t, out, len(saved))
	for i := range out {
		require.Equal(t, saved[i].Outcome, out[i].Outcome, fs[i].SourceKey)
	}
	want, got := rowsOf(t, db, one.ID), rowsOf(t, db, batched.ID)
	require.NotEmpty(t, want)
	require.Equal(t, want, got)

	// The ids SaveBatch reports are the rows' own, in storing order.
	var last int64
	for i, s := range out {
		if s.Outcome != store.Created && s.Outcome != store.Appended {
			continue
		}
		var ticketID int64
		require.NoError(t, db.QueryRow(ctx, "SELECT ticket_id FROM ticket_messages WHERE id = ? AND source_key = ?",
			[]any{s.MessageRowID, fs[i].SourceKey}, &ticketID))
		require.Equal(t, s.TicketID, ticketID)
		require.Greater(t, s.MessageRowID, last)
		last = s.MessageRowID
	}
}

// TestSaveBatchRefusesAKeyStoredOutsideTheLedger: a source key already in
// ticket_messages but not in the ledger (a POP3 server reusing a UIDL)
// makes the COPY fail on the unique key; the batch is refused as a whole,
// and saving its messages one at a time stores them all.
func TestSaveBatchRefusesAKeyStoredOutsideTheLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	mb := newMailbox(t, db, "reused key")
	old := fetched(mb, "k2", firstMail, 0)
	_, err := db.Tickets().Save(ctx, old)
	require.NoError(t, err)
	require.NoError(t, db.Exec(ctx, "DELETE FROM fetched_messages WHERE mailbox_id = ?", mb.ID))

	fs := []store.Fetched{fetched(mb, "k1", replyMail, 1), fetched(mb, "k2", "Subject: new\r\n\r\nother bytes\r\n", 2)}
	_, err = db.Tickets().SaveBatch(ctx, fs)
	require.ErrorIs(t, err, store.ErrBatchRefused)
	require.ErrorIs(t, err, gorm.ErrDuplicatedKey)
	require.Equal(t, int64(1), messageCount(t, db, mb.ID), "nothing of the refused batch stays")

	for _, f := range fs {
		s, err := db.Tickets().Save(ctx, f)
		require.NoError(t, err)
		require.NotEqual(t, store.Known, s.Outcome)
	}
	require.Equal(t, int64(3), messageCount(t, db, mb.ID))
}

// TestSaveBatchQueuesNotificationsOfItsRows: an outbox row refers to its
// message row, which a batch writes with COPY: the row is written before
// the notification that names it.
func TestSaveBatchQueuesNotificationsOfItsRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	mb, n := notifyingMailbox(t, db)
	fs := []store.Fetched{fetched(mb, "k1", firstMail, 1), fetched(mb, "k2", replyMail, 2)}
	for i := range fs {
		fs[i].Notify = n
	}
	saved, err := db.Tickets().SaveBatch(ctx, fs)
	require.NoError(t, err)
	require.Equal(t, 2, saved[0].Notifications, "the admin's and the acknowledgement")
	require.Equal(t, 1, saved[1].Notifications, "the admin's")
	rows, err := db.Outbox().List(ctx, mb.ID, 10)
	require.NoError(t, err)
	require.Len(t, rows, 3)
	byMessage := map[int64]int{}
	for _, r := range rows {
		byMessage[*r.TicketMessageID]++
	}
	require.Equal(t, map[int64]int{saved[0].MessageRowID: 2, saved[1].MessageRowID: 1}, byMessage,
		"saved %+v", saved)
}

// TestSaveBatchTouchesRepliedTickets: a reply in a batch moves its
// ticket's last_message_at and updated_at, whether the ticket is older
// than the batch or opened in it.
func TestSaveBatchTouchesRepliedTickets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	mb := newMailbox(t, db, "touch")
	first, err := db.Tickets().SaveBatch(ctx, []store.Fetched{
		fetched(mb, "k1", firstMail, 1), fetched(mb, "k2", "Subject: other\r\nMessage-ID: <o@x>\r\n\r\nx\r\n", 2)})
	require.NoError(t, err)

	now = t0.Add(time.Hour)
	second, err := db.Tickets().SaveBatch(ctx, []store.Fetched{
		fetched(mb, "k3", replyMail, 3),
		fetched(mb, "k4", "Subject: new\r\nMessage-ID: <n@x>\r\n\r\nx\r\n", 4),
		fetched(mb, "k5", "Subject: Re: new\r\nIn-Reply-To: <n@x>\r\n\r\ny\r\n", 5)})
	require.NoError(t, err)
	require.Equal(t, first[0].TicketID, second[0].TicketID)
	require.Equal(t, second[1].TicketID, second[2].TicketID)

	times := func(id int64) string {
		var last, updated time.Time
		require.NoError(t, db.QueryRow(ctx, "SELECT last_message_at, updated_at FROM tickets WHERE id = ?", []any{id}, &last, &updated))
		return last.UTC().Format(time.TimeOnly) + " " + updated.UTC().Format(time.TimeOnly)
	}
	require.Equal(t, "09:00:00 09:00:00", times(first[0].TicketID), "an older ticket")
	require.Equal(t, "08:00:00 08:00:00", times(first[1].TicketID), "untouched")
	require.Equal(t, "09:00:00 09:00:00", times(second[1].TicketID), "opened and answered in the batch")
}

// TestSaveBatchWithoutSequencePrivilege: a role granted the tables but not
// the id sequence (nextval needs USAGE on it, INSERT does not) still
// stores batches, the slower way.
func TestSaveBatchWithoutSequencePrivilege(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := storetest.Postgres(t)
	role := "fetcher_noseq_" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano(), 36))
	require.NoError(t, admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN"))
	t.Cleanup(func() {
		_ = admin.Exec(ctx, "DROP OWNED BY "+role)
		_ = admin.Exec(ctx, "DROP ROLE "+role)
	})
	require.NoError(t, admin.Exec(ctx, "GRANT USAGE ON SCHEMA public TO "+role))
	require.NoError(t, admin.Exec(ctx, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+role))
	u, err := url.Parse(admin.URL())
	require.NoError(t, err)
	u.User = url.User(role)
	db, err := store.Open(ctx, u.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	mb := newMailbox(t, admin, "no sequence")
	fs := conversation(mb)
	saved, err := db.Tickets().SaveBatch(ctx, fs)
	require.NoError(t, err)
	require.Equal(t, store.Created, saved[0].Outcome)
	require.Equal(t, int64(11), messageCount(t, db, mb.ID))
}

// TestSaveBatchKeepsTicketNumbersInMailOrder: the collecting ticket,
// created at once, does not overtake the mail tickets a batch holds.
func TestSaveBatchKeepsTicketNumbersInMailOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	mb := newMailbox(t, db, "order")
	saved, err := db.Tickets().SaveBatch(ctx, []store.Fetched{
		fetched(mb, "k1", firstMail, 1),
		fetched(mb, "k2", "Subject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@x>\r\n\r\naway\r\n", 2),
		fetched(mb, "k3", "Subject: other\r\nMessage-ID: <o@x>\r\n\r\nx\r\n", 3),
	})
	require.NoError(t, err)
	require.Less(t, saved[0].TicketID, saved[1].TicketID)
	require.Less(t, saved[1].TicketID, saved[2].TicketID)
}

// TestSaveBatchNotifyingMessageKeepsItsAttachments: a message flushed on
// its own, before its notifications, is written with its attachments.
func TestSaveBatchNotifyingMessageKeepsItsAttachments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	mb, n := notifyingMailbox(t, db)
	raw, err := os.ReadFile("../ticket/testdata/attachment.eml")
	require.NoError(t, err)
	fs := []store.Fetched{fetched(mb, "k1", string(raw), 1), fetched(mb, "k2", firstMail, 2)}
	for i := range fs {
		fs[i].Notify = n
	}
	saved, err := db.Tickets().SaveBatch(ctx, fs)
	require.NoError(t, err)
	want := len(fs[0].Parsed.Attachments)
	require.Positive(t, want)
	var got int64
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM ticket_attachments WHERE ticket_message_id = ?",
		[]any{saved[0].MessageRowID}, &got))
	require.Equal(t, int64(want), got)
}
