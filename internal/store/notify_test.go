package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// listen opens a connection of its own to db, as a ticket system would,
// and listens on the tickets channel.
func listen(t *testing.T, db *store.DB) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, "LISTEN "+store.TicketsChannel)
	require.NoError(t, err)
	return conn
}

// next waits up to wait for a notification; nil when none came.
func next(t *testing.T, conn *pgx.Conn, wait time.Duration) *pgconn.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	if ctx.Err() != nil {
		return nil
	}
	require.NoError(t, err)
	return n
}

func event(t *testing.T, n *pgconn.Notification) store.TicketEvent {
	t.Helper()
	require.NotNil(t, n, "a committed ticket must be announced")
	require.Equal(t, store.TicketsChannel, n.Channel)
	var ev store.TicketEvent
	require.NoError(t, json.Unmarshal([]byte(n.Payload), &ev), n.Payload)
	return ev
}

// TestSaveNotifiesListenersAfterCommit: a listening connection hears of
// every message that creates or joins a ticket, with its ids, once the
// transaction committed; of nothing for a known or duplicate message or a
// transaction rolled back at commit.
func TestSaveNotifiesListenersAfterCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	mb := newMailbox(t, db, "notify")
	conn := listen(t, db)

	created, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", firstMail, 1))
	require.NoError(t, err)
	n := next(t, conn, 5*time.Second)
	require.Equal(t, store.TicketEvent{
		TicketID: created.TicketID, TicketMessageID: created.MessageRowID, MailboxID: mb.ID, Event: "created",
	}, event(t, n))
	require.JSONEq(t, `{"ticket_id":`+itoa(created.TicketID)+`,"ticket_message_id":`+itoa(created.MessageRowID)+
		`,"mailbox_id":`+itoa(mb.ID)+`,"event":"created"}`, n.Payload)
	require.NotContains(t, n.Payload, " ", "the payload is compact JSON")

	// Known (the same source key) and Duplicate (the same message under a
	// new key) write no ticket row: nothing to announce.
	again, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", firstMail, 1))
	require.NoError(t, err)
	require.Equal(t, store.Known, again.Outcome)
	dup, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:8:1", firstMail, 2))
	require.NoError(t, err)
	require.Equal(t, store.Duplicate, dup.Outcome)
	require.Nil(t, next(t, conn, 300*time.Millisecond), "a known or duplicate message announces nothing")

	// A transaction that fails at COMMIT, after pg_notify ran in it (a
	// deferred constraint trigger fires only then), delivers nothing.
	require.NoError(t, db.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$`))
	require.NoError(t, db.Exec(ctx, `CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON ticket_messages
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()`))
	_, err = db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:2", replyMail, 3))
	require.ErrorContains(t, err, "refused at commit")
	require.Nil(t, next(t, conn, 500*time.Millisecond), "a rolled-back transaction announces nothing")

	require.NoError(t, db.Exec(ctx, `DROP TRIGGER refuse ON ticket_messages`))
	appended, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:2", replyMail, 3))
	require.NoError(t, err)
	require.Equal(t, store.Appended, appended.Outcome)
	require.Equal(t, store.TicketEvent{
		TicketID: created.TicketID, TicketMessageID: appended.MessageRowID, MailboxID: mb.ID, Event: "appended",
	}, event(t, next(t, conn, 5*time.Second)))
	require.Nil(t, next(t, conn, 300*time.Millisecond), "one notification per message")
}

// TestSaveOnSQLiteNotifiesNothing: the embedded database has no NOTIFY,
// and saving must not try one.
func TestSaveOnSQLiteNotifiesNothing(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	mb := newMailbox(t, db, "notify")
	saved, err := db.Tickets().Save(context.Background(), fetched(mb, "imap:INBOX:7:1", firstMail, 1))
	require.NoError(t, err)
	require.Equal(t, store.Created, saved.Outcome)
}

func itoa(n int64) string { return fmt.Sprint(n) }
