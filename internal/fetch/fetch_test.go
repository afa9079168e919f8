package fetch_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

const (
	clientID     = "11111111-2222-3333-4444-555555555555"
	clientSecret = "client-secret-value-xyz"
	tenant       = "contoso.onmicrosoft.com"
)

type testBundle struct {
	db     *store.DB
	tokens *oauthtest.Server
	imap   *mailboxtest.IMAPServer
	runner *fetch.Runner
	logs   *bytes.Buffer
}

func setup(t *testing.T, db *store.DB) *testBundle {
	t.Helper()
	return setupWith(t, db, oauthtest.Options{})
}

// setupWith is setup with token endpoint options, and IMAP server options
// on top of the token check.
func setupWith(t *testing.T, db *store.DB, opts oauthtest.Options, imapOpts ...mailboxtest.IMAPOptions) *testBundle {
	t.Helper()
	tokens := oauthtest.NewServer(opts)
	t.Cleanup(tokens.Close)
	tokens.AddClient(clientID, clientSecret)
	var serverOpts mailboxtest.IMAPOptions
	if len(imapOpts) > 0 {
		serverOpts = imapOpts[0]
	}
	serverOpts.CheckToken = func(user, tok string) bool {
		u, ok := tokens.AccessTokenUser(tok)
		return ok && u == user
	}
	srv, err := mailboxtest.StartIMAP(serverOpts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	logs := &bytes.Buffer{}
	return &testBundle{
		db: db, tokens: tokens, imap: srv, logs: logs,
		runner: &fetch.Runner{
			DB:      db,
			Mailbox: &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}, CommandTimeout: 5 * time.Second},
			Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		},
	}
}

// addMailbox inserts a mailbox row with plain SQL, as an admin would, and
// returns its id.
func (b *testBundle) addMailbox(t *testing.T, name, user, refreshToken string, extra ...string) int64 {
	t.Helper()
	b.imap.AddUser(user, "")
	cols, vals := "", ""
	for i := 0; i+1 < len(extra); i += 2 {
		cols += ", " + extra[i]
		vals += ", '" + extra[i+1] + "'"
	}
	ctx := context.Background()
	require.NoError(t, b.db.Exec(ctx, `INSERT INTO mailboxes
		(name, protocol, host, port, username, oauth_provider, tenant_id, client_id, client_secret, authority_url, refresh_token`+cols+`)
		VALUES (?, 'imap', ?, ?, ?, 'microsoft', ?, ?, ?, ?, ?`+vals+`)`,
		name, b.imap.Host(), b.imap.Port(), user, tenant, clientID, clientSecret, b.tokens.URL(), refreshToken))
	mb, err := b.db.Mailboxes().GetByName(ctx, name)
	require.NoError(t, err)
	return mb.ID
}

func (b *testBundle) deliver(t *testing.T, user string, raws ...string) {
	t.Helper()
	for _, raw := range raws {
		_, err := b.imap.Deliver(user, "INBOX", []byte(raw))
		require.NoError(t, err)
	}
}

func mail(n int, extra string) string {
	return fmt.Sprintf("From: Customer %d <c%d@example.org>\r\nTo: support@example.com\r\nSubject: Question %d\r\nMessage-ID: <q%d@example.org>\r\nDate: Mon, 16 Nov 2026 09:%02d:00 +0100\r\n%s\r\nHello, this is question %d.\r\n", n, n, n, n, n, extra, n)
}

func count(t *testing.T, db *store.DB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRow(context.Background(), sql, args, &n))
	return n
}

func TestPassTurnsMailIntoTicketsExactlyOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		const user = "support@example.com"
		rt := b.tokens.IssueRefreshToken(clientID, user)
		id := b.addMailbox(t, "Support", user, rt)
		b.deliver(t, user, mail(1, ""), mail(2, ""), mail(3, ""))

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, sum.OK(), "RunOnce() failed: %v", sum.Failed)
		require.Equal(t, 3, sum.Runs[0].TicketsCreated)

		// A second pass, and a reply arriving later.
		b.deliver(t, user, mail(4, "In-Reply-To: <q2@example.org>\r\nReferences: <q2@example.org>\r\n"))
		sum, err = b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, sum.OK(), "RunOnce() failed: %v", sum.Failed)
		require.Equal(t, 1, sum.Runs[0].MessagesFetched)
		require.Equal(t, 1, sum.Runs[0].MessagesAppended)

		require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM tickets WHERE mailbox_id = ?", id))
		require.Equal(t, int64(4), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
		require.Equal(t, int64(2), count(t, db, "SELECT count(*) FROM ticket_messages m JOIN ticket_messages q ON q.ticket_id = m.ticket_id WHERE m.message_id = '<q4@example.org>'"))
		require.Equal(t, int64(2), count(t, db, "SELECT count(*) FROM fetch_runs WHERE mailbox_id = ? AND finished_at IS NOT NULL AND error IS NULL", id))

		mb, err := db.Mailboxes().Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.StatusActive, mb.Status)
		require.False(t, mb.LastSuccessAt.IsZero())
		require.NotEqual(t, rt, mb.RefreshToken, "the rotated refresh token must be stored")
		require.NotEmpty(t, mb.RefreshToken)
		require.Equal(t, 1, b.tokens.Requests(), "the cached access token must serve the second pass")
		require.Equal(t, 4, seenCount(t, b, user), "every stored message is marked \\Seen")
	})
}

func TestBadMailboxDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		bad := b.addMailbox(t, "Expired", "old@example.com", "not-a-refresh-token-we-issued")
		unreachable := b.addMailbox(t, "Down", "down@example.com", b.tokens.IssueRefreshToken(clientID, "down@example.com"))
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET port = 1 WHERE id = ?", unreachable))
		invalid := b.addMailbox(t, "Typo", "typo@example.com", "x", "after_fetch", "archive")
		good := b.addMailbox(t, "Good", "good@example.com", b.tokens.IssueRefreshToken(clientID, "good@example.com"))
		b.deliver(t, "good@example.com", mail(1, ""))

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.Len(t, sum.Failed, 3)
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", good))

		tests := []struct {
			id         int64
			status     string
			wantInText []string
		}{
			{bad, store.StatusNeedsReauth, []string{"invalid_grant", "AADSTS70008"}},
			{unreachable, store.StatusFailing, []string{"connect"}},
			{invalid, store.StatusFailing, []string{"after_fetch", "archive"}},
			{good, store.StatusActive, nil},
		}
		for _, tt := range tests {
			mb, err := db.Mailboxes().Get(ctx, tt.id)
			require.NoError(t, err)
			require.Equal(t, tt.status, mb.Status, "%s: status", mb.Name)
			for _, w := range tt.wantInText {
				require.Contains(t, mb.LastError, w, "%s: last_error", mb.Name)
			}
			require.NotContains(t, mb.LastError, clientSecret)
		}
		require.NotContains(t, b.logs.String(), clientSecret)
		require.NotContains(t, b.logs.String(), "not-a-refresh-token-we-issued")
	})
}

func TestActionOwedAfterCrashIsAppliedOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		const user = "crash@example.com"
		id := b.addMailbox(t, "Crash", user, b.tokens.IssueRefreshToken(clientID, user), "after_fetch", "delete")
		b.deliver(t, user, mail(1, ""), mail(2, ""))

		// A pass whose server refuses the after-fetch action, as if the
		// process died between commit and STORE: rows are committed, the
		// messages stay on the server.
		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, 0, folderSize(t, b, user, "INBOX"))

		b.deliver(t, user, mail(3, ""))
		// Mark the third message as stored but not yet deleted, by saving it
		// through a pass with a keep action, then switching to delete: the
		// next pass must settle the owed delete without storing it again.
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET after_fetch = 'keep' WHERE id = ?", id))
		_, err = b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.NoError(t, db.Exec(ctx, "UPDATE fetched_messages SET action = 'delete', action_done_at = NULL WHERE mailbox_id = ?", id))
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET after_fetch = 'delete' WHERE id = ?", id))
		require.Equal(t, 1, folderSize(t, b, user, "INBOX"))

		sum, err = b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, 0, folderSize(t, b, user, "INBOX"), "the owed delete is applied")
		require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
	})
}

func TestMoveAfterFetch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		const user = "move@example.com"
		b.addMailbox(t, "Move", user, b.tokens.IssueRefreshToken(clientID, user), "after_fetch", "move", "move_to_folder", "Processed")
		b.deliver(t, user, mail(1, ""), mail(2, ""))
		require.NoError(t, b.imap.CreateFolder(user, "Processed"))
		sum, err := b.runner.RunOnce(context.Background())
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, 0, folderSize(t, b, user, "INBOX"))
		require.Equal(t, 2, folderSize(t, b, user, "Processed"))
	})
}

func TestMissingMoveFolderKeepsMailAndSaysSo(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	b := setup(t, db)
	const user = "nofolder@example.com"
	id := b.addMailbox(t, "NoFolder", user, b.tokens.IssueRefreshToken(clientID, user), "after_fetch", "move", "move_to_folder", "Nowhere")
	b.deliver(t, user, mail(1, ""))
	sum, err := b.runner.RunOnce(context.Background())
	require.NoError(t, err)
	require.Len(t, sum.Failed, 1)
	require.Equal(t, 1, folderSize(t, b, user, "INBOX"), "mail stays when the move fails")
	require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
	mb, err := db.Mailboxes().Get(context.Background(), id)
	require.NoError(t, err)
	require.Contains(t, mb.LastError, "Nowhere")
	require.Contains(t, mb.LastError, "retried next run")

	// New mail is still stored while the action keeps failing.
	b.deliver(t, user, mail(2, ""), mail(3, ""))
	require.NoError(t, db.Exec(context.Background(), "UPDATE mailboxes SET next_attempt_at = NULL WHERE id = ?", id))
	sum, err = b.runner.RunOnce(context.Background())
	require.NoError(t, err)
	require.Len(t, sum.Failed, 1)
	require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))

	// Once the folder exists, every owed move is made.
	require.NoError(t, b.imap.CreateFolder(user, "Nowhere"))
	require.NoError(t, db.Exec(context.Background(), "UPDATE mailboxes SET next_attempt_at = NULL WHERE id = ?", id))
	sum, err = b.runner.RunOnce(context.Background())
	require.NoError(t, err)
	require.True(t, sum.OK(), "%v", sum.Failed)
	require.Equal(t, 0, folderSize(t, b, user, "INBOX"))
	require.Equal(t, 3, folderSize(t, b, user, "Nowhere"))
}

func imapClient(t *testing.T, b *testBundle, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(b.imap.Addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: b.imap.Cert.Pool}})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, tok := b.freshToken(t, user)
	require.NoError(t, c.Authenticate(mailbox.NewXOAUTH2Client(user, tok)))
	return c
}

func (b *testBundle) freshToken(t *testing.T, user string) (string, string) {
	t.Helper()
	rt := b.tokens.IssueRefreshToken(clientID, user)
	tok, err := b.runner.OAuthClient().Token(context.Background(), fetch.OAuthConfig(store.Mailbox{
		OAuthProvider: "microsoft", OAuthGrant: "refresh_token", TenantID: tenant, ClientID: clientID,
		ClientSecret: clientSecret, AuthorityURL: b.tokens.URL(), Protocol: "imap",
	}), rt)
	require.NoError(t, err)
	return rt, tok.AccessToken
}

func folderSize(t *testing.T, b *testBundle, user, folder string) int {
	t.Helper()
	c := imapClient(t, b, user)
	data, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(t, err)
	return int(data.NumMessages)
}

func seenCount(t *testing.T, b *testBundle, user string) int {
	t.Helper()
	c := imapClient(t, b, user)
	_, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(t, err)
	data, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	require.NoError(t, err)
	return len(data.AllUIDs())
}

func TestShutdownMidPassLeavesStatusAlone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// SIGTERM while the token request is in flight, against a provider
		// that revokes the token family when a refresh token is reused: the
		// answer must still be waited for and its rotated refresh token
		// stored, or the next pass would replay the spent one.
		b := setupWith(t, db, oauthtest.Options{Strict: true})
		const user = "slow@example.com"
		rt := b.tokens.IssueRefreshToken(clientID, user)
		id := b.addMailbox(t, "Slow", user, rt)
		b.deliver(t, user, mail(1, ""))
		b.tokens.FailNext(oauthtest.Slow(time.Second))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		_, err := b.runner.RunOnce(ctx)
		require.ErrorIs(t, err, context.Canceled)

		mb, err := db.Mailboxes().Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, store.StatusActive, mb.Status, "a shutdown is not the mailbox's failure")
		require.Empty(t, mb.LastError)
		require.NotEqual(t, rt, mb.RefreshToken, "the rotated refresh token must be kept")
		var runErr string
		require.NoError(t, db.QueryRow(context.Background(), "SELECT error FROM fetch_runs WHERE mailbox_id = ?", []any{id}, &runErr))
		require.Contains(t, runErr, "interrupted")
		require.Equal(t, int64(0), count(t, db, "SELECT count(*) FROM ticket_messages"))
		require.Empty(t, mb.LeaseOwner, "the lease is released on shutdown, not left to expire")

		// The next pass works with the stored token.
		require.NoError(t, db.Exec(context.Background(), "UPDATE mailboxes SET access_token = NULL WHERE id = ?", id))
		sum, err := b.runner.RunOnce(context.Background())
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
	})
}

func TestUnreadableRowCostsOnlyItsMailbox(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t) // Postgres refuses such values at INSERT
	b := setup(t, db)
	ctx := context.Background()
	const user = "fine@example.com"
	good := b.addMailbox(t, "Fine", user, b.tokens.IssueRefreshToken(clientID, user))
	b.deliver(t, user, mail(1, ""))
	bad := b.addMailbox(t, "Typo date", "typo@example.com", "x")
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET client_secret_expires_at = '22.11.2028' WHERE id = ?", bad))
	quoted := b.addMailbox(t, "Quoted bool", "q@example.com", b.tokens.IssueRefreshToken(clientID, "q@example.com"))
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET enabled = 'true' WHERE id = ?", quoted))

	sum, err := b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.Len(t, sum.Failed, 1)
	require.Contains(t, sum.Failed[bad].Error(), "cannot be read")
	require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", good))
	require.Len(t, sum.Runs, 2, "the quoted-boolean mailbox ran too")
}

func TestValueTheDatabaseRefusesIsStoredRaw(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	b := setup(t, db)
	ctx := context.Background()
	const user = "refused@example.com"
	b.addMailbox(t, "Refused", user, b.tokens.IssueRefreshToken(clientID, user))
	b.deliver(t, user, mail(1, ""), mail(2, ""))
	// The database refuses a decoded value of message 1 as data (SQLSTATE
	// 22001), as it would a value past a column or index limit.
	require.NoError(t, db.Exec(ctx, `CREATE FUNCTION refuse_q1() RETURNS trigger AS $$
		BEGIN IF NEW.message_id = '<q1@example.org>' THEN
			RAISE EXCEPTION 'value too long' USING ERRCODE = 'string_data_right_truncation';
		END IF; RETURN NEW; END $$ LANGUAGE plpgsql`))
	require.NoError(t, db.Exec(ctx, `CREATE TRIGGER refuse_q1 BEFORE INSERT ON ticket_messages FOR EACH ROW EXECUTE FUNCTION refuse_q1()`))

	sum, err := b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, sum.OK(), "%v", sum.Failed)
	require.Equal(t, int64(2), count(t, db, "SELECT count(*) FROM ticket_messages"))
	var parseErr string
	var raw []byte
	require.NoError(t, db.QueryRow(ctx, "SELECT parse_error, raw FROM ticket_messages WHERE message_id IS NULL", nil, &parseErr, &raw))
	require.Contains(t, parseErr, "only its raw bytes are kept")
	require.Equal(t, mail(1, ""), string(raw))
}
