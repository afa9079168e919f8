package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

// conversation is a mailbox's worth of mail that exercises every way a
// message finds its ticket: new, replies (to a message earlier in the
// same batch and to one in an earlier batch), a resend of the same
// message, an alarm panel reusing one Message-ID, auto-replies, a subject
// tag, and a header-only row followed by the whole message.
func conversation(mb store.Mailbox) []store.Fetched {
	msg := func(id, extra, body string) string {
		return fmt.Sprintf("From: c@example.com\r\nTo: support@example.org\r\nSubject: Printer\r\n"+
			"Date: Mon, 3 Jun 2024 10:00:00 +0200\r\nMessage-ID: <%s>\r\n%s\r\n%s\r\n", id, extra, body)
	}
	raws := []string{
		msg("a@x", "", "first"),
		msg("b@x", "In-Reply-To: <a@x>\r\n", "reply to a"),
		msg("a@x", "", "first"),                  // a resend: duplicate of 1
		msg("alarm@x", "", "alarm one"),          // an alarm panel's id ...
		msg("alarm@x", "", "alarm two"),          // ... reused: a new ticket
		msg("c@x", "References: <b@x>\r\n", "c"), // joins a's ticket through b
		msg("ooo@x", "Auto-Submitted: auto-replied\r\nIn-Reply-To: <zz@x>\r\n", "out of office"),
		msg("d@x", "In-Reply-To: <ooo@x>\r\n", "a person answering the auto-reply"),
		msg("big@x", "", "header only"), // stored header-only (Size set below)
		msg("e@x", "In-Reply-To: <nothing@x>\r\n", "replies to nothing stored"),
		msg("big@x", "", "the whole big message"), // joins the header-only row's ticket
		msg("f@x", "In-Reply-To: <c@x>\r\n", "deep in the thread"),
	}
	var out []store.Fetched
	for i, raw := range raws {
		f := store.Fetched{MailboxID: mb.ID, SourceKey: fmt.Sprintf("imap:INBOX:1:%d", i+1), Raw: []byte(raw),
			Parsed: ticket.Parse([]byte(raw)), Action: store.ActionMarkSeen}
		if i == 8 {
			f.Size = 5 << 20
		}
		out = append(out, f)
	}
	return out
}

// shape is what storing left: for each message its outcome and the
// position (in the message list) of the first message of its ticket.
func shape(t *testing.T, db *store.DB, mailboxID int64, fs []store.Fetched, saved []store.Saved) []string {
	t.Helper()
	first := map[int64]int{}
	var out []string
	for i, s := range saved {
		if _, ok := first[s.TicketID]; !ok {
			first[s.TicketID] = i
		}
		out = append(out, fmt.Sprintf("%s %s ticket-of-%d", fs[i].SourceKey, s.Outcome, first[s.TicketID]))
	}
	var ledger int64
	require.NoError(t, db.QueryRow(context.Background(), "SELECT count(*) FROM fetched_messages WHERE mailbox_id = ?", []any{mailboxID}, &ledger))
	return append(out, fmt.Sprintf("%d rows, %d ledger entries", messageCount(t, db, mailboxID), ledger))
}

// TestSaveBatchStoresAsSaveDoes: the same mail saved one message per
// transaction and in batches of every size ends the same: the same
// outcomes, the same tickets, the same rows.
func TestSaveBatchStoresAsSaveDoes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var want []string
		for _, size := range []int{1, 2, 5, 12} {
			mb := newMailbox(t, db, fmt.Sprintf("batch-%d", size))
			fs := conversation(mb)
			var saved []store.Saved
			for start := 0; start < len(fs); start += size {
				part := fs[start:min(start+size, len(fs))]
				var out []store.Saved
				var err error
				if size == 1 {
					var s store.Saved
					s, err = db.Tickets().Save(ctx, part[0])
					out = []store.Saved{s}
				} else {
					out, err = db.Tickets().SaveBatch(ctx, part)
				}
				require.NoError(t, err)
				saved = append(saved, out...)
			}
			got := shape(t, db, mb.ID, fs, saved)
			if want == nil {
				want = got
				continue
			}
			require.Equal(t, want, got, "batches of %d", size)
		}
		require.Equal(t, []string{
			"imap:INBOX:1:1 created ticket-of-0",
			"imap:INBOX:1:2 appended ticket-of-0",
			"imap:INBOX:1:3 duplicate ticket-of-0",
			"imap:INBOX:1:4 created ticket-of-3",
			"imap:INBOX:1:5 created ticket-of-4",
			"imap:INBOX:1:6 appended ticket-of-0",
			"imap:INBOX:1:7 appended ticket-of-6",
			"imap:INBOX:1:8 created ticket-of-7",
			"imap:INBOX:1:9 created ticket-of-8",
			"imap:INBOX:1:10 created ticket-of-9",
			"imap:INBOX:1:11 appended ticket-of-8",
			"imap:INBOX:1:12 appended ticket-of-0",
			"11 rows, 12 ledger entries",
		}, want)

		// Saving a batch again stores nothing twice.
		mb := newMailbox(t, db, "again")
		fs := conversation(mb)
		_, err := db.Tickets().SaveBatch(ctx, fs)
		require.NoError(t, err)
		again, err := db.Tickets().SaveBatch(ctx, fs)
		require.NoError(t, err)
		for _, s := range again {
			require.Equal(t, store.Known, s.Outcome)
		}
	})
}

// TestSaveBatchIsOneTransaction: a batch the database refuses leaves
// nothing behind, not even the messages before the refused one, and says
// that saving them one at a time may succeed.
func TestSaveBatchIsOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	mb := newMailbox(t, db, "refused")
	fs := conversation(mb)[:3]
	for i := range fs {
		fs[i].Cursor = &store.Cursor{MailboxID: mb.ID, Folder: "INBOX", UIDValidity: 1, LastUID: uint32(i + 1)}
	}
	fs[1].Parsed.BodyText = "a NUL \x00 Postgres refuses in text"
	_, err := db.Tickets().SaveBatch(ctx, fs)
	require.ErrorIs(t, err, store.ErrBatchRefused)
	require.Zero(t, messageCount(t, db, mb.ID))
	cur, err := db.Tickets().Cursor(ctx, mb.ID, "INBOX")
	require.NoError(t, err)
	require.Zero(t, cur.LastUID, "the cursor stays before the batch")

	// A database that is gone is not a refusal: retrying one by one
	// would not help.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = db.Tickets().SaveBatch(cctx, fs)
	require.Error(t, err)
	require.NotErrorIs(t, err, store.ErrBatchRefused)
}

// TestSaveBatchAnnouncesEachTicketInOrder: one NOTIFY statement for a
// batch still gives a listener one event per message, in order, after the
// commit.
func TestSaveBatchAnnouncesEachTicketInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	conn := listen(t, db)
	mb := newMailbox(t, db, "announce")
	fs := conversation(mb)[:4]
	saved, err := db.Tickets().SaveBatch(ctx, fs)
	require.NoError(t, err)
	for _, i := range []int{0, 1, 3} { // 2 is a duplicate: no event
		ev := event(t, next(t, conn, 5*time.Second))
		require.Equal(t, saved[i].MessageRowID, ev.TicketMessageID)
		require.Equal(t, saved[i].TicketID, ev.TicketID)
		require.Equal(t, saved[i].Outcome.String(), ev.Event)
	}
	require.Nil(t, next(t, conn, 200*time.Millisecond))
}

// TestLargeColumnsUseLZ4: migration 009 makes Postgres compress message
// bytes and texts with LZ4.
func TestLargeColumnsUseLZ4(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	var methods string
	require.NoError(t, db.QueryRow(context.Background(), `
		SELECT string_agg(attname || '=' || attcompression::text, ',' ORDER BY attname)
		  FROM pg_attribute
		 WHERE attrelid IN ('ticket_messages'::regclass, 'ticket_attachments'::regclass)
		   AND attname IN ('raw', 'body_text', 'body_html', 'body_html_safe', 'data')`, nil, &methods))
	require.Equal(t, "body_html=l,body_html_safe=l,body_text=l,data=l,raw=l", methods)
}
