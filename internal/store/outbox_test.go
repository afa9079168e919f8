package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/notify"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// notifyingMailbox is a sending mailbox feeding a ticket type that tells
// its admin of new tickets and replies and acknowledges requesters.
func notifyingMailbox(t *testing.T, db *store.DB) (store.Mailbox, *store.Notifying) {
	t.Helper()
	mb := newMailbox(t, db, "Support")
	require.NoError(t, db.Exec(context.Background(), `INSERT INTO ticket_types (name, mailbox_id, admin_email, notify_replies, acknowledge)
		VALUES ('Support', ?, 'lead@example.com', true, true)`, mb.ID))
	return mb, &store.Notifying{
		Sender:   notify.Sender{MailboxName: mb.Name, Address: mb.Username, Own: []string{mb.Username}},
		AckLimit: 3, AckWindow: time.Hour,
	}
}

func TestNotificationsAreQueuedWithTheirMessage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, n := notifyingMailbox(t, db)
		f := fetched(mb, "k1", firstMail, 1)
		f.Notify = n
		saved, err := db.Tickets().Save(ctx, f)
		require.NoError(t, err)
		require.Equal(t, 2, saved.Notifications, "the admin's and the acknowledgement")

		// Saving the same message again (a crash after the commit) queues
		// nothing more.
		again, err := db.Tickets().Save(ctx, f)
		require.NoError(t, err)
		require.Equal(t, store.Known, again.Outcome)
		rows, err := db.Outbox().List(ctx, mb.ID, 10)
		require.NoError(t, err)
		require.Len(t, rows, 2)

		// A reply notifies the admin only.
		r := fetched(mb, "k2", replyMail, 2)
		r.Notify = n
		saved, err = db.Tickets().Save(ctx, r)
		require.NoError(t, err)
		require.Equal(t, store.Appended, saved.Outcome)
		require.Equal(t, 1, saved.Notifications)
		rows, err = db.Outbox().List(ctx, mb.ID, 10)
		require.NoError(t, err)
		require.Equal(t, notify.KindReply, rows[0].Kind)
		require.Equal(t, saved.TicketID, *rows[0].TicketID)
		require.Equal(t, saved.MessageRowID, *rows[0].TicketMessageID)
	})
}

func TestFailedSaveQueuesNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, n := notifyingMailbox(t, db)
		f := fetched(mb, "k1", firstMail, 1)
		f.Notify = n
		// The cursor write fails after the rows, in the same transaction:
		// its mailbox does not exist.
		f.Cursor.MailboxID = mb.ID + 1000
		_, err := db.Tickets().Save(ctx, f)
		require.Error(t, err)
		rows, err := db.Outbox().List(ctx, 0, 10)
		require.NoError(t, err)
		require.Empty(t, rows, "a notification exists only with its committed message")
	})
}

func TestOutboxRowLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, n := notifyingMailbox(t, db)
		f := fetched(mb, "k1", firstMail, 1)
		f.Notify = n
		_, err := db.Tickets().Save(ctx, f)
		require.NoError(t, err)

		due, err := db.Outbox().Due(ctx, mb.ID, 10)
		require.NoError(t, err)
		require.Len(t, due, 2)
		require.Less(t, due[0].ID, due[1].ID, "oldest first")
		first, second := due[0], due[1]

		require.NoError(t, db.Outbox().Retry(ctx, first.ID, "451 4.3.0 later", time.Now().Add(time.Hour)))
		require.NoError(t, db.Outbox().MarkSent(ctx, second.ID, "250 2.0.0 OK queued as 42"))
		due, err = db.Outbox().Due(ctx, mb.ID, 10)
		require.NoError(t, err)
		require.Empty(t, due, "one waits for its next attempt, one is sent")
		waiting, err := db.Outbox().Waiting(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, int64(1), waiting)

		// A row already finished keeps its outcome.
		require.NoError(t, db.Outbox().MarkFailed(ctx, second.ID, "too late"))
		rows, err := db.Outbox().List(ctx, mb.ID, 10)
		require.NoError(t, err)
		for _, r := range rows {
			if r.ID == second.ID {
				require.Equal(t, store.OutboxSent, r.Status)
				require.Equal(t, "250 2.0.0 OK queued as 42", *r.SMTPReply)
				require.NotNil(t, r.SentAt)
				require.Nil(t, r.LastError)
			} else {
				require.Equal(t, store.OutboxPending, r.Status)
				require.Equal(t, 1, r.Attempts)
				require.Equal(t, "451 4.3.0 later", *r.LastError)
			}
		}

		require.NoError(t, db.Mailboxes().RecordSendOutcome(ctx, mb.ID, "535 5.7.3 refused\x00"))
		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, store.StatusActive, got.Status, "sending never marks fetching as failing")
		require.Contains(t, got.SMTPLastError, "535 5.7.3 refused")
		require.NoError(t, db.Mailboxes().RecordSendOutcome(ctx, mb.ID, ""))
		got, err = db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Empty(t, got.SMTPLastError)
		require.False(t, got.SMTPLastSuccessAt.IsZero())
	})
}

func TestSigningInAgainDropsTheSendingToken(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "Support")
		_, err := db.Mailboxes().WithSendTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
			return oauth.Token{AccessToken: "send-old", RefreshToken: "rt-1", Expiry: time.Now().Add(time.Hour)}, nil
		})
		require.NoError(t, err)
		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "send-old", got.SMTPAccessToken)
		require.Equal(t, "rt-1", got.RefreshToken, "the sending refresh rotates the one refresh token")
		require.Empty(t, got.AccessToken, "the fetching cache is apart")

		require.NoError(t, db.Mailboxes().StoreAuthorization(ctx, mb.ID,
			oauth.Token{AccessToken: "fetch-new", RefreshToken: "rt-2", Expiry: time.Now().Add(time.Hour)}))
		got, err = db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Empty(t, got.SMTPAccessToken, "the old grant's sending token is dropped")
		require.True(t, got.SMTPAccessTokenExpiresAt.IsZero())
	})
}
