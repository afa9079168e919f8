package fetch_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// popBundle is a pass over a POP3 mailbox (seed 001's "POP3 - OAuth") on
// an in-process server with the Exchange two-line XOAUTH2 login.
type popBundle struct {
	db     *store.DB
	tokens *oauthtest.Server
	pop    *mailboxtest.POP3Server
	runner *fetch.Runner
	id     int64
}

func setupPOP3(t *testing.T, db *store.DB, afterFetch string) *popBundle {
	t.Helper()
	tokens := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(tokens.Close)
	tokens.AddClient(clientID, clientSecret)
	srv, err := mailboxtest.StartPOP3(mailboxtest.POP3Options{Pipelining: true, CheckToken: func(u, tok string) bool {
		got, ok := tokens.AccessTokenUser(tok)
		return ok && got == u
	}})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	const user = "pop@example.com"
	srv.AddUser(user, "")
	ctx := context.Background()
	require.NoError(t, db.Exec(ctx, `INSERT INTO mailboxes
		(name, protocol, host, port, username, oauth_provider, tenant_id, client_id, client_secret, authority_url, refresh_token, after_fetch)
		VALUES ('POP3 - OAuth', 'pop3', ?, ?, ?, 'microsoft', ?, ?, ?, ?, ?, ?)`,
		srv.Host(), srv.Port(), user, tenant, clientID, clientSecret, tokens.URL(), tokens.IssueRefreshToken(clientID, user), afterFetch))
	mb, err := db.Mailboxes().GetByName(ctx, "POP3 - OAuth")
	require.NoError(t, err)
	return &popBundle{db: db, tokens: tokens, pop: srv, id: mb.ID, runner: &fetch.Runner{
		DB: db, Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		Mailbox: &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}, CommandTimeout: 5 * time.Second},
	}}
}

func (b *popBundle) pass(t *testing.T) fetch.Summary {
	t.Helper()
	sum, err := b.runner.RunOnce(context.Background())
	require.NoError(t, err)
	return sum
}

func TestPOP3KeepFetchesEachMessageOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// after_fetch left at the default mark_seen: for POP3 it means keep.
		b := setupPOP3(t, db, "mark_seen")
		for i := 1; i <= 3; i++ {
			_, err := b.pop.Deliver("pop@example.com", []byte(popMail(i)))
			require.NoError(t, err)
		}
		for range 3 {
			sum := b.pass(t)
			require.True(t, sum.OK(), "%v", sum.Failed)
		}
		require.Len(t, b.pop.Messages("pop@example.com"), 3, "keep leaves the mail on the server")
		require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", b.id))
		var raw []byte
		require.NoError(t, db.QueryRow(context.Background(), "SELECT raw FROM ticket_messages WHERE message_id = '<pop3@example.org>'", nil, &raw))
		require.Equal(t, popMail(3), string(raw))
	})
}

func TestPOP3DropMidRETRThenDelete(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupPOP3(t, db, "delete")
		for i := 1; i <= 3; i++ {
			_, err := b.pop.Deliver("pop@example.com", []byte(popMail(i)))
			require.NoError(t, err)
		}
		// The server hangs up in the middle of the first RETR: nothing is
		// stored, nothing deleted, and the mailbox backs off.
		b.pop.SetDropMidRETR(true)
		sum := b.pass(t)
		require.Len(t, sum.Failed, 1)
		require.Len(t, b.pop.Messages("pop@example.com"), 3)
		require.Equal(t, int64(0), count(t, db, "SELECT count(*) FROM ticket_messages"))

		b.pop.SetDropMidRETR(false)
		require.NoError(t, db.Exec(context.Background(), "UPDATE mailboxes SET next_attempt_at = NULL"))
		sum = b.pass(t)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, 3, sum.Runs[0].TicketsCreated)
		require.Empty(t, b.pop.Messages("pop@example.com"), "DELE after commit, applied at QUIT")

		// The next pass sees the deletes done and forgets the UIDLs: the
		// ledger does not grow with every message ever fetched.
		sum = b.pass(t)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages"))
		require.Equal(t, int64(0), count(t, db, "SELECT count(*) FROM fetched_messages"))
	})
}

func TestPOP3MisbehavingUIDLsLoseNothing(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	b := setupPOP3(t, db, "delete")
	const user = "pop@example.com"

	// A UIDL reused for a new message after the old one was deleted and
	// forgotten: the new message is stored too, then deleted.
	require.NoError(t, b.pop.DeliverAs(user, "X1", []byte(popMail(1))))
	for range 2 {
		sum := b.pass(t)
		require.True(t, sum.OK(), "%v", sum.Failed)
	}
	require.Empty(t, b.pop.Messages(user))
	require.NoError(t, b.pop.DeliverAs(user, "X1", []byte(popMail(2))))
	sum := b.pass(t)
	require.True(t, sum.OK(), "%v", sum.Failed)
	require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE message_id = '<pop2@example.org>'"),
		"the second message under a reused UIDL is stored")

	// One UIDL listed for two messages: the first is stored, and neither
	// is deleted, since a DELE by that UIDL could hit the unstored one.
	require.NoError(t, b.pop.DeliverAs(user, "D", []byte(popMail(3))))
	require.NoError(t, b.pop.DeliverAs(user, "D", []byte(popMail(4))))
	for range 2 {
		b.pass(t)
	}
	require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE message_id = '<pop3@example.org>'"))
	left := b.pop.Messages(user)
	require.Contains(t, left, "D")
	require.Len(t, left, 2, "no message of a repeated UIDL is deleted")
}

// TestPOP3UnsavedMessageEndsWithoutQUIT: when a fetched message cannot be
// stored, the session must end without QUIT, or servers like Gmail would
// count the message as downloaded and never list it again.
func TestPOP3UnsavedMessageEndsWithoutQUIT(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	b := setupPOP3(t, db, "delete")
	const user = "pop@example.com"
	for i := 1; i <= 3; i++ {
		_, err := b.pop.Deliver(user, []byte(popMail(i)))
		require.NoError(t, err)
	}
	ctx := context.Background()
	require.NoError(t, db.Exec(ctx, `CREATE FUNCTION refuse_pop2() RETURNS trigger AS $$
		BEGIN IF position('Subject: pop 2'::bytea in NEW.raw) > 0 THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END
		$$ LANGUAGE plpgsql`))
	require.NoError(t, db.Exec(ctx, `CREATE TRIGGER refuse_pop2 BEFORE INSERT ON ticket_messages FOR EACH ROW EXECUTE FUNCTION refuse_pop2()`))

	sum := b.pass(t)
	require.Len(t, sum.Failed, 1)
	require.Len(t, b.pop.Messages(user), 3, "no QUIT: not even the stored message's DELE took effect")

	require.NoError(t, db.Exec(ctx, `DROP TRIGGER refuse_pop2 ON ticket_messages`))
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET next_attempt_at = NULL"))
	sum = b.pass(t)
	require.True(t, sum.OK(), "%v", sum.Failed)
	require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages"))
	require.Empty(t, b.pop.Messages(user))
}
