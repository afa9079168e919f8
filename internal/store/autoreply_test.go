package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// outOfOffice is a vacation notice; inReplyTo may be "".
func outOfOffice(id, inReplyTo string) string {
	return "From: Carl <carl@example.org>\r\nSubject: Automatic reply: Printer broken\r\n" +
		"Message-ID: <" + id + "@example.org>\r\nIn-Reply-To: " + inReplyTo + "\r\n" +
		"Auto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n"
}

// bounce is a delivery status notification returning the header of the
// message with returnedID and subject; it has no In-Reply-To of its own.
func bounce(id, returnedID, subject string) string {
	return "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <" + id + "@mx.example.org>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nUser unknown.\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n" +
		"Final-Recipient: rfc822; nobody@example.invalid\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.org\r\n" +
		"Subject: " + subject + "\r\nMessage-ID: " + returnedID + "\r\n--b--\r\n"
}

func TestAutoReplyThreading(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "auto")
		first, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", firstMail, 1))
		require.NoError(t, err)
		const collecting = -1 // the mailbox's collecting ticket
		tests := []struct {
			name       string
			raw        string
			ownTickets bool
			want       store.Outcome
			wantTicket int64 // collecting, or the first ticket (0 = a new one)
		}{
			{"out-of-office to a ticket's mail joins it", outOfOffice("o1", "<a1@example.org>"), false, store.Appended, first.TicketID},
			{"out-of-office matching nothing is collected", outOfOffice("o2", ""), false, store.Appended, collecting},
			{"a second one joins the same collecting ticket", outOfOffice("o3", "<unknown@example.org>"), false, store.Appended, collecting},
			{"bounce of a ticket's mail joins it by the returned Message-ID", bounce("d1", "<a1@example.org>", "Re: Printer broken"), false, store.Appended, first.TicketID},
			{"bounce of our tagged mail joins by the returned subject's tag", bounce("d2", "<ack-1@example.org>", fmt.Sprintf("[#%d] Printer broken", first.TicketID)), false, store.Appended, first.TicketID},
			{"bounce of spam backscatter is collected", bounce("d3", "<spam@elsewhere.example>", "Cheap pills"), false, store.Appended, collecting},
			{"the admin asked for tickets of their own", outOfOffice("o4", ""), true, store.Created, 0},
		}
		var collectingID int64
		for i, tt := range tests {
			f := fetched(mb, fmt.Sprintf("imap:INBOX:7:%d", i+2), tt.raw, uint32(i+2))
			f.AutoReplyTickets = tt.ownTickets
			got, err := db.Tickets().Save(ctx, f)
			require.NoError(t, err, tt.name)
			require.Equal(t, tt.want, got.Outcome, tt.name)
			var kind string
			require.NoError(t, db.QueryRow(ctx, "SELECT kind FROM tickets WHERE id = ?", []any{got.TicketID}, &kind))
			switch tt.wantTicket {
			case collecting:
				require.Equal(t, store.KindAutoReplies, kind, tt.name)
				if collectingID == 0 {
					collectingID = got.TicketID
				}
				require.Equal(t, collectingID, got.TicketID, tt.name)
			case 0:
				require.Equal(t, store.KindMail, kind, tt.name)
				require.NotEqual(t, first.TicketID, got.TicketID, tt.name)
				require.NotEqual(t, collectingID, got.TicketID, tt.name)
			default:
				require.Equal(t, tt.wantTicket, got.TicketID, tt.name)
			}
			var auto bool
			require.NoError(t, db.QueryRow(ctx, "SELECT is_auto_reply FROM ticket_messages WHERE id = ?", []any{got.MessageRowID}, &auto))
			require.True(t, auto, tt.name)
		}
		require.Equal(t, int64(3), count(t, db, "tickets"))
	})
}

func TestCollectingTicketRace(t *testing.T) {
	t.Parallel()
	// Workers with their own connection pools store different unmatched
	// auto-replies at once: they must end up in one collecting ticket.
	ctx := context.Background()
	first := storetest.Postgres(t)
	url := first.URL()
	mb := newMailbox(t, first, "race")
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.Open(ctx, url)
			if !assert.NoError(t, err) {
				return
			}
			defer db.Close()
			key := fmt.Sprintf("imap:INBOX:7:%d", i+1)
			_, err = db.Tickets().Save(ctx, fetched(mb, key, outOfOffice(fmt.Sprint("r", i), ""), uint32(i+1)))
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, int64(1), count(t, first, "tickets"))
	require.Equal(t, int64(6), count(t, first, "ticket_messages"))
}

func TestOversizedMessageRow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "big")
		header := "From: Ann <ann@example.org>\r\nSubject: Scan\r\nMessage-ID: <big@example.org>\r\n\r\n"
		f := fetched(mb, "imap:INBOX:7:1", header, 1)
		f.Size = 80 << 20
		got, err := db.Tickets().Save(ctx, f)
		require.NoError(t, err)
		var row struct {
			RawTruncated bool
			SizeBytes    int64
			Raw          []byte
		}
		require.NoError(t, db.QueryRow(ctx, "SELECT raw_truncated, size_bytes, raw FROM ticket_messages WHERE id = ?",
			[]any{got.MessageRowID}, &row.RawTruncated, &row.SizeBytes, &row.Raw))
		require.True(t, row.RawTruncated)
		require.Equal(t, int64(80<<20), row.SizeBytes)
		require.Equal(t, header, string(row.Raw))
	})
}

// TestPersonReplyingToCollectedMailOpensATicket: a vendor's automatic
// acknowledgement is collected; a person's reply to it is a real
// conversation and must not disappear into the collecting ticket.
func TestPersonReplyingToCollectedMailOpensATicket(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "vendor")
		ack, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", outOfOffice("ack1", ""), 1))
		require.NoError(t, err)
		reply := "From: Dana <dana@vendor.example>\r\nSubject: Re: Automatic reply\r\nMessage-ID: <p1@vendor.example>\r\n" +
			"In-Reply-To: <ack1@example.org>\r\n\r\nA person answering.\r\n"
		got, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:2", reply, 2))
		require.NoError(t, err)
		require.Equal(t, store.Created, got.Outcome)
		require.NotEqual(t, ack.TicketID, got.TicketID)
		tagged := fmt.Sprintf("From: Dana <dana@vendor.example>\r\nSubject: [#%d] hello\r\nMessage-ID: <p2@vendor.example>\r\n\r\nTagged.\r\n", ack.TicketID)
		got, err = db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:3", tagged, 3))
		require.NoError(t, err)
		require.Equal(t, store.Created, got.Outcome, "a tag naming the collecting ticket does not hide mail in it")
	})
}

// TestWholeMessageJoinsItsHeaderOnlyTicket: a message once stored as its
// header (over the size limit) and fetched whole later, after the limit
// was raised, joins the ticket staff already know.
func TestWholeMessageJoinsItsHeaderOnlyTicket(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "twin")
		header := "From: Ann <ann@example.org>\r\nSubject: Scan\r\nMessage-ID: <big@example.org>\r\n\r\n"
		stub := fetched(mb, "imap:INBOX:7:1", header, 1)
		stub.Size = 80 << 20
		first, err := db.Tickets().Save(ctx, stub)
		require.NoError(t, err)
		got, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:9", header+"the whole scan\r\n", 9))
		require.NoError(t, err)
		require.Equal(t, store.Appended, got.Outcome)
		require.Equal(t, first.TicketID, got.TicketID)
		// Two header-only rows without any header (POP3 without TOP) are
		// two messages, not duplicates.
		for i, key := range []string{"pop3:a", "pop3:b"} {
			f := fetched(mb, key, "", 0)
			f.Cursor, f.Size = nil, int64(60<<20+i)
			got, err := db.Tickets().Save(ctx, f)
			require.NoError(t, err)
			require.Equal(t, store.Created, got.Outcome, key)
		}
	})
}
