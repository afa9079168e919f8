package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

func newMailbox(t *testing.T, db *store.DB, name string) store.Mailbox {
	t.Helper()
	mb := store.Mailbox{
		Name: name, Protocol: "imap", Host: "imap.example.com", Port: 993, UseSSL: true,
		Username: "support@example.com", OAuthProvider: "microsoft", ClientID: "client",
		RefreshToken: "rt-0", Enabled: true,
	}
	require.NoError(t, db.Mailboxes().Create(context.Background(), &mb))
	return mb
}

func TestMigrateIsIdempotentAndReversible(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		applied, err := db.Migrate(ctx)
		require.NoError(t, err)
		require.Empty(t, applied, "second Migrate() = %v, want nothing applied", applied)
		pending, err := db.PendingMigrations(ctx)
		require.NoError(t, err)
		require.Empty(t, pending)

		all, err := store.Migrations(db.Dialect())
		require.NoError(t, err)
		for i := len(all) - 1; i >= 0; i-- {
			v, err := db.MigrateDown(ctx)
			require.NoError(t, err)
			require.Equal(t, all[i].Version, v)
		}
		applied, err = db.Migrate(ctx)
		require.NoError(t, err)
		require.Len(t, applied, len(all))
	})
}

func TestMigrateConcurrentStart(t *testing.T) {
	t.Parallel()
	// Several workers starting at once on an empty database: each must
	// come up, and every migration must be applied exactly once.
	url := storetest.PostgresURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var total atomic.Int64
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.Open(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			applied, err := db.Migrate(ctx)
			total.Add(int64(len(applied)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	all, err := store.Migrations(store.Postgres)
	require.NoError(t, err)
	require.Equal(t, int64(len(all)), total.Load())
}

func TestMailboxDefaultsFromPlainSQL(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// The columns an admin's INSERT leaves out get the schema's defaults,
		// and NULLs read back as empty values.
		require.NoError(t, db.Exec(ctx, `INSERT INTO mailboxes (name, protocol, host, port, username, oauth_provider, tenant_id, client_id, refresh_token)
			VALUES ('Support', 'imap', 'outlook.office365.com', 993, 'support@example.com', 'microsoft', 'contoso.onmicrosoft.com', 'cid', 'secret-refresh-token')`))
		mb, err := db.Mailboxes().GetByName(ctx, "Support")
		require.NoError(t, err)
		require.True(t, mb.UseSSL)
		require.True(t, mb.Enabled)
		require.Equal(t, "oauth2", mb.AuthType)
		require.Equal(t, "refresh_token", mb.OAuthGrant)
		require.Equal(t, "INBOX", mb.Folder)
		require.Equal(t, "mark_seen", mb.AfterFetch)
		require.Equal(t, "active", mb.Status)
		require.Equal(t, 300, mb.RefreshBeforeSeconds)
		require.Empty(t, mb.ClientSecret)
		require.True(t, mb.AccessTokenExpiresAt.IsZero())
		require.NotContains(t, fmt.Sprintf("%v %+v %#v", mb, mb, mb), "secret-refresh-token", "a mailbox must print without secrets")
		var logged strings.Builder
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "mailbox", mb)
		require.NotContains(t, logged.String(), "secret-refresh-token", "a mailbox must log without secrets")
	})
}

func TestWithTokenLock(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "tokens")
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

		got, err := db.Mailboxes().WithTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
			require.Equal(t, "rt-0", cur.RefreshToken)
			return oauth.Token{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: exp}, nil
		})
		require.NoError(t, err)
		require.Equal(t, "at-1", got.AccessToken)

		// A provider that returns no refresh token must not erase ours.
		_, err = db.Mailboxes().WithTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
			require.Equal(t, "rt-1", cur.RefreshToken)
			require.Equal(t, "at-1", cur.AccessToken)
			require.True(t, exp.Equal(cur.Expiry), "Expiry = %v, want %v", cur.Expiry, exp)
			return oauth.Token{AccessToken: "at-2", Expiry: exp}, nil
		})
		require.NoError(t, err)
		stored, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "rt-1", stored.RefreshToken)
		require.Equal(t, "at-2", stored.AccessToken)

		// A failed refresh stores nothing.
		_, err = db.Mailboxes().WithTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
			return oauth.Token{}, fmt.Errorf("provider down")
		})
		require.Error(t, err)
		stored, err = db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "rt-1", stored.RefreshToken)
	})
}

func TestWithTokenLockSerializesRefreshes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "race")
		// Five workers refresh at once, each through its own connection
		// pool as separate processes would: the provider must see each
		// refresh token once, and the later workers must find the token the
		// first one stored.
		var refreshes atomic.Int64
		used := sync.Map{}
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := db.Mailboxes().WithTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
					if !cur.NeedsRefresh(time.Now(), 5*time.Minute) {
						return cur, nil
					}
					if _, dup := used.LoadOrStore(cur.RefreshToken, true); dup {
						return cur, fmt.Errorf("refresh token %s used twice", cur.RefreshToken)
					}
					n := refreshes.Add(1)
					time.Sleep(50 * time.Millisecond) // a slow token endpoint
					return oauth.Token{AccessToken: fmt.Sprint("at-", n), RefreshToken: fmt.Sprint("rt-", n), Expiry: time.Now().Add(time.Hour)}, nil
				})
				assert.NoError(t, err) // require may not stop a test from another goroutine
			}()
		}
		wg.Wait()
		require.Equal(t, int64(1), refreshes.Load())
	})
}

func fetched(mb store.Mailbox, key, raw string, cursorUID uint32) store.Fetched {
	return store.Fetched{
		MailboxID: mb.ID, SourceKey: key, Raw: []byte(raw), Parsed: ticket.Parse([]byte(raw)),
		Action: store.ActionMarkSeen,
		Cursor: &store.Cursor{MailboxID: mb.ID, Folder: "INBOX", UIDValidity: 7, LastUID: cursorUID},
	}
}

const (
	firstMail = "From: Ann <ann@example.org>\r\nSubject: Printer broken\r\nMessage-ID: <a1@example.org>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nIt jams.\r\n"
	replyMail = "From: Ann <ann@example.org>\r\nSubject: RE: Printer broken\r\nMessage-ID: <a2@example.org>\r\nIn-Reply-To: <a1@example.org>\r\nReferences: <a1@example.org>\r\n\r\nStill jams.\r\n"
	otherMail = "From: Bob <bob@example.org>\r\nSubject: VPN\r\nMessage-ID: <b1@example.org>\r\n\r\nNo VPN.\r\n"
)

func TestSaveExactlyOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "save")
		tickets := db.Tickets()
		tests := []struct {
			name string
			in   store.Fetched
			want store.Outcome
		}{
			{"first message opens a ticket", fetched(mb, "imap:INBOX:7:1", firstMail, 1), store.Created},
			{"same source key again", fetched(mb, "imap:INBOX:7:1", firstMail, 1), store.Known},
			{"reply joins the ticket", fetched(mb, "imap:INBOX:7:2", replyMail, 2), store.Appended},
			{"same Message-ID under a new UID", fetched(mb, "imap:INBOX:8:1", firstMail, 3), store.Duplicate},
			{"unrelated message", fetched(mb, "imap:INBOX:7:4", otherMail, 4), store.Created},
		}
		var first store.Saved
		for _, tt := range tests {
			got, err := tickets.Save(ctx, tt.in)
			require.NoError(t, err, tt.name)
			require.Equal(t, tt.want, got.Outcome, "%s: Save() = %v, want %v", tt.name, got.Outcome, tt.want)
			if tt.want == store.Created && first.TicketID == 0 {
				first = got
			}
			if tt.want == store.Appended || tt.want == store.Duplicate {
				require.Equal(t, first.TicketID, got.TicketID, tt.name)
			}
		}
		require.Equal(t, int64(3), count(t, db, "ticket_messages"))
		require.Equal(t, int64(2), count(t, db, "tickets"))

		cur, err := tickets.Cursor(ctx, mb.ID, "INBOX")
		require.NoError(t, err)
		require.Equal(t, uint32(4), cur.LastUID)

		var subject string
		require.NoError(t, db.QueryRow(ctx, "SELECT subject FROM tickets WHERE id = ?", []any{first.TicketID}, &subject))
		require.Equal(t, "Printer broken", subject)
		var raw []byte
		require.NoError(t, db.QueryRow(ctx, "SELECT raw FROM ticket_messages WHERE id = ?", []any{first.MessageRowID}, &raw))
		require.Equal(t, firstMail, string(raw))
	})
}

func TestPendingActions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "pending")
		tickets := db.Tickets()
		_, err := tickets.Save(ctx, fetched(mb, "imap:INBOX:7:1", firstMail, 1))
		require.NoError(t, err)
		keep := fetched(mb, "imap:INBOX:7:2", otherMail, 2)
		keep.Action = store.ActionKeep
		_, err = tickets.Save(ctx, keep)
		require.NoError(t, err)

		pending, err := tickets.Pending(ctx, mb.ID, "imap:INBOX:7:")
		require.NoError(t, err)
		require.Equal(t, []store.PendingAction{{SourceKey: "imap:INBOX:7:1", Action: store.ActionMarkSeen}}, pending)
		other, err := tickets.Pending(ctx, mb.ID, "imap:Archive:7:")
		require.NoError(t, err)
		require.Empty(t, other)

		require.NoError(t, tickets.MarkDone(ctx, mb.ID, []string{"imap:INBOX:7:1"}))
		pending, err = tickets.Pending(ctx, mb.ID, "imap:INBOX:7:")
		require.NoError(t, err)
		require.Empty(t, pending)

		known, err := tickets.Known(ctx, mb.ID, []string{"imap:INBOX:7:1", "imap:INBOX:7:9"})
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"imap:INBOX:7:1": true}, known)
	})
}

func TestSaveHostileText(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// NUL bytes and invalid UTF-8 are rejected by Postgres text columns;
		// the message must still be stored.
		mb := newMailbox(t, db, "hostile")
		raw := "From: x@example.org\r\nSubject: bad \xff\xfe bytes\r\n\r\nnul \x00 here \xc3\x28\r\n"
		got, err := db.Tickets().Save(context.Background(), fetched(mb, "imap:INBOX:7:1", raw, 1))
		require.NoError(t, err)
		require.Equal(t, store.Created, got.Outcome)
	})
}

func count(t *testing.T, db *store.DB, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRow(context.Background(), "SELECT count(*) FROM "+table, nil, &n))
	return n
}

func TestConcurrentSaveOfOneMessage(t *testing.T) {
	t.Parallel()
	// Two workers (separate connection pools, as separate processes have)
	// store the same message at the same moment: one row, no error.
	ctx := context.Background()
	first := storetest.Postgres(t)
	url := first.URL()
	mb := newMailbox(t, first, "race")
	var wg sync.WaitGroup
	outcomes := make(chan store.Outcome, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.Open(ctx, url)
			if !assert.NoError(t, err) {
				return
			}
			defer db.Close()
			saved, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", firstMail, 1))
			assert.NoError(t, err)
			outcomes <- saved.Outcome
		}()
	}
	wg.Wait()
	close(outcomes)
	created := 0
	for o := range outcomes {
		if o == store.Created {
			created++
		}
	}
	require.Equal(t, 1, created)
	require.Equal(t, int64(1), count(t, first, "ticket_messages"))
	require.Equal(t, int64(1), count(t, first, "tickets"))
}

func TestPendingActionsByFolder(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "folders")
		keys := []string{"imap:Входящие:7:1", "imap:Anfragen-Ü:7:2", "imap:50%_off:7:3", "imap:50xxoff:7:4", "imap:archive:7:5", "imap:Archive:7:6"}
		for i, k := range keys {
			raw := fmt.Sprintf("From: x@example.org\r\nMessage-ID: <f%d@example.org>\r\n\r\nbody %d\r\n", i, i)
			_, err := db.Tickets().Save(ctx, fetched(mb, k, raw, uint32(i+1)))
			require.NoError(t, err)
		}
		for _, k := range keys {
			prefix := k[:strings.LastIndex(k, ":")+1]
			got, err := db.Tickets().Pending(ctx, mb.ID, prefix)
			require.NoError(t, err)
			require.Equal(t, []store.PendingAction{{SourceKey: k, Action: store.ActionMarkSeen}}, got, "Pending(%q)", prefix)
		}
	})
}

func TestSameMessageIDDifferentContentIsStored(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// Alarm panels and scanners reuse one Message-ID: different
		// messages must both be stored.
		ctx := context.Background()
		mb := newMailbox(t, db, "alarms")
		pump := func(n int) string {
			return fmt.Sprintf("From: scada@plant.example\r\nSubject: Pump %d failed\r\nMessage-ID: <alert@scada>\r\n\r\nPump %d pressure low\r\n", n, n)
		}
		a, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", pump(1), 1))
		require.NoError(t, err)
		b, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:2", pump(7), 2))
		require.NoError(t, err)
		require.Equal(t, store.Created, a.Outcome)
		require.NotEqual(t, store.Duplicate, b.Outcome)
		require.Equal(t, int64(2), count(t, db, "ticket_messages"))
		// The very same message again (a renumbered folder) is a duplicate.
		c, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:8:1", pump(7), 3))
		require.NoError(t, err)
		require.Equal(t, store.Duplicate, c.Outcome)
	})
}

func TestHugeMessageIDIsStored(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		mb := newMailbox(t, db, "huge")
		raw := "From: x@example.org\r\nMessage-ID: <" + strings.Repeat("a", 9000) + "@example.org>\r\n\r\nbody\r\n"
		_, err := db.Tickets().Save(context.Background(), fetched(mb, "imap:INBOX:7:1", raw, 1))
		require.NoError(t, err)
	})
}

func TestOptionalColumnsAreNull(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		mb := newMailbox(t, db, "nulls")
		_, err := db.Tickets().Save(context.Background(), fetched(mb, "imap:INBOX:7:1", otherMail, 1))
		require.NoError(t, err)
		require.Equal(t, int64(0), count(t, db, "ticket_messages WHERE parse_error IS NOT NULL OR in_reply_to IS NOT NULL OR cc_addrs IS NOT NULL"))
	})
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://fetcher:s3cret@db:5432/fetcher", "postgres://fetcher:xxxxx@db:5432/fetcher"},
		{"postgres://fetcher@db/fetcher?sslmode=disable&password=s3cret", "postgres://fetcher@db/fetcher?password=xxxxx&sslmode=disable"},
		{"host=db user=fetcher password=s3cret dbname=fetcher", "host=db user=fetcher password=xxxxx dbname=fetcher"},
		{"host=db password='s3 cret' dbname=fetcher", "host=db password=xxxxx dbname=fetcher"},
		{"sqlite:fetcher.db", "sqlite:fetcher.db"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, store.Redact(tt.in))
	}
}

func TestIssuedTokensSurviveAFailedSave(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	ctx := context.Background()
	mb := newMailbox(t, db, "failover")
	// The first UPDATE of the row fails, as in a database failover; a
	// sequence is not rolled back with the transaction, so the retry passes.
	require.NoError(t, db.Exec(ctx, `CREATE SEQUENCE fail_seq`))
	require.NoError(t, db.Exec(ctx, `CREATE FUNCTION fail_first() RETURNS trigger AS $$
		BEGIN IF nextval('fail_seq') = 1 THEN RAISE EXCEPTION 'simulated failover'; END IF; RETURN NEW; END
		$$ LANGUAGE plpgsql`))
	require.NoError(t, db.Exec(ctx, `CREATE TRIGGER fail_first BEFORE UPDATE ON mailboxes FOR EACH ROW EXECUTE FUNCTION fail_first()`))

	calls := 0
	got, err := db.Mailboxes().WithTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
		calls++
		return oauth.Token{AccessToken: "at-new", RefreshToken: "rt-new", Expiry: time.Now().Add(time.Hour)}, nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, calls, "the provider must be asked once")
	require.Equal(t, "at-new", got.AccessToken)
	stored, err := db.Mailboxes().Get(ctx, mb.ID)
	require.NoError(t, err)
	require.Equal(t, "rt-new", stored.RefreshToken)
}

func TestForgetGoneKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "pop")
		for i, k := range []string{"pop3:a", "pop3:b", "pop3:c"} {
			f := fetched(mb, k, fmt.Sprintf("From: x@example.org\r\nMessage-ID: <p%d@example.org>\r\n\r\n%d\r\n", i, i), 0)
			f.Cursor, f.Action = nil, store.ActionKeep
			_, err := db.Tickets().Save(ctx, f)
			require.NoError(t, err)
		}
		owed := fetched(mb, "pop3:d", "From: x@example.org\r\nMessage-ID: <pd@example.org>\r\n\r\nd\r\n", 0)
		owed.Cursor, owed.Action = nil, store.ActionDelete
		_, err := db.Tickets().Save(ctx, owed)
		require.NoError(t, err)

		// b is still on the server; a and c are gone; d still owes its
		// delete, so it is kept whatever the listing says.
		n, err := db.Tickets().Forget(ctx, mb.ID, "pop3:", []string{"pop3:b"})
		require.NoError(t, err)
		require.Equal(t, 2, n)
		known, err := db.Tickets().Known(ctx, mb.ID, []string{"pop3:a", "pop3:b", "pop3:c", "pop3:d"})
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"pop3:b": true, "pop3:d": true}, known)
		require.Equal(t, int64(4), count(t, db, "ticket_messages"), "tickets stay")

		// A UIDL the server reuses for another message: stored, under a
		// distinct key, and then known.
		again := fetched(mb, "pop3:a", "From: y@example.org\r\nMessage-ID: <other@example.org>\r\n\r\nnew\r\n", 0)
		again.Cursor = nil
		saved, err := db.Tickets().Save(ctx, again)
		require.NoError(t, err)
		require.Equal(t, store.Created, saved.Outcome)
		require.Equal(t, int64(5), count(t, db, "ticket_messages"))
		require.Equal(t, int64(1), count(t, db, "ticket_messages WHERE source_key LIKE 'pop3:a#%'"))
		known, err = db.Tickets().Known(ctx, mb.ID, []string{"pop3:a"})
		require.NoError(t, err)
		require.True(t, known["pop3:a"])
	})
}

func TestSubjectTagThreadsWithoutHeaders(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "tags")
		other := newMailbox(t, db, "other")
		first, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:1", firstMail, 1))
		require.NoError(t, err)
		elsewhere, err := db.Tickets().Save(ctx, fetched(other, "imap:INBOX:7:1", otherMail, 1))
		require.NoError(t, err)

		tagged := func(id int64, key string) store.Saved {
			raw := fmt.Sprintf("From: Ann <ann@example.org>\r\nSubject: AW: [#%d] Printer broken\r\nMessage-ID: <%s@example.org>\r\n\r\nStill.\r\n", id, key)
			saved, err := db.Tickets().Save(ctx, fetched(mb, "imap:INBOX:7:"+key, raw, 2))
			require.NoError(t, err)
			return saved
		}
		got := tagged(first.TicketID, "2")
		require.Equal(t, store.Appended, got.Outcome)
		require.Equal(t, first.TicketID, got.TicketID)
		// A tag naming another mailbox's ticket opens a new one here.
		got = tagged(elsewhere.TicketID, "3")
		require.Equal(t, store.Created, got.Outcome)
	})
}

func TestIsDataError(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	ctx := context.Background()
	notANumber := db.Exec(ctx, "SELECT 'abc'::int")
	require.True(t, store.IsDataError(notANumber), "%v", notANumber)
	badByte := db.Exec(ctx, "SELECT convert_from('\\x00'::bytea, 'UTF8')")
	require.True(t, store.IsDataError(badByte), "%v", badByte)
	syntax := db.Exec(ctx, "SELEC 1")
	require.False(t, store.IsDataError(syntax), "%v", syntax)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.False(t, store.IsDataError(db.Exec(cancelled, "SELECT 1")))
}
