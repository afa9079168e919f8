package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

func TestSanitizedHTMLIsStored(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "html")
		raw := "From: Ann <ann@example.org>\r\nSubject: Offer\r\nMessage-ID: <h1@example.org>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
			`<p onclick="steal()">Hi</p><script>alert(1)</script><img src="https://track.example/p.gif"><img src="cid:logo@x">` + "\r\n"
		saved, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", raw, 1))
		require.NoError(t, err)
		var html, safe string
		require.NoError(t, db.QueryRow(ctx, "SELECT body_html, body_html_safe FROM ticket_messages WHERE id = ?",
			[]any{saved.MessageRowID}, &html, &safe))
		require.Contains(t, html, "<script>", "body_html is kept as sent")
		require.Equal(t, "<p>Hi</p><img src=\"cid:logo@x\">\n", safe, "script, handler and tracking pixel removed")
	})
}

// TestReplyChainStaysOneTicket: each reply names only the message before
// it (In-Reply-To without References, as some mailers send), and the last
// one comes back from a different mailer with only References.
func TestReplyChainStaysOneTicket(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "chain")
		first, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", firstMail, 1))
		require.NoError(t, err)
		prev := "<a1@example.org>"
		for i := 2; i <= 5; i++ {
			ref := "In-Reply-To: " + prev
			if i == 5 {
				ref = "References: <unknown@elsewhere.example> " + prev
			}
			raw := fmt.Sprintf("From: Ann <ann@example.org>\r\nSubject: Re: Re: Printer broken\r\nMessage-ID: <c%d@example.org>\r\n%s\r\n\r\nStep %d.\r\n", i, ref, i)
			got, err := db.Tickets().Save(ctx, fetched(mb, fmt.Sprintf("imap:INBOX:7:%d", i), raw, uint32(i)))
			require.NoError(t, err)
			require.Equal(t, store.Appended, got.Outcome, "reply %d", i)
			require.Equal(t, first.TicketID, got.TicketID, "reply %d", i)
			prev = fmt.Sprintf("<c%d@example.org>", i)
		}
		require.Equal(t, int64(1), count(t, db, "tickets"))
	})
}
