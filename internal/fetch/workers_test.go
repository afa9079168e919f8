package fetch_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// TestWorkersShareMailboxes: two, then three workers (each with its own
// connection pool, as separate replicas have) make rounds over 200
// mailboxes at the same moment. In each round every mailbox is fetched by
// exactly one worker, and every message is stored once.
func TestWorkersShareMailboxes(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			t.Parallel()
			const mailboxes, rounds = 200, 2
			ctx := context.Background()
			db := storetest.Postgres(t)
			url := db.URL()
			b := setup(t, db)
			for i := range mailboxes {
				user := fmt.Sprintf("u%d@example.com", i)
				b.addMailbox(t, fmt.Sprint("Box ", i), user, b.tokens.IssueRefreshToken(clientID, user))
			}
			// Rounds as the long-running workers make them: a mailbox is due
			// an Interval after its last success. One clock for the
			// workers and the times they write, standing still within a
			// round, so how the scheduler spreads the goroutines cannot
			// matter.
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			runners := make([]*fetch.Runner, workers)
			for w := range runners {
				wdb, err := store.Open(ctx, url)
				require.NoError(t, err)
				t.Cleanup(func() { _ = wdb.Close() })
				wdb.Now = clock
				runners[w] = &fetch.Runner{
					DB: wdb, Worker: fmt.Sprint("w", w), Concurrency: 4, Interval: time.Hour, Now: clock,
					Mailbox: &mailbox.Options{TLSConfig: &tls.Config{RootCAs: b.imap.Cert.Pool}, CommandTimeout: 10 * time.Second},
					Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
				}
			}
			for round := 1; round <= rounds; round++ {
				mu.Lock()
				now = now.Add(2 * time.Hour)
				mu.Unlock()
				for i := range mailboxes {
					b.deliver(t, fmt.Sprintf("u%d@example.com", i), mail(round*1000+i, ""))
				}
				var wg sync.WaitGroup
				for _, r := range runners {
					wg.Add(1)
					go func() {
						defer wg.Done()
						sum, err := r.RunOnce(ctx)
						assert.NoError(t, err)
						assert.True(t, sum.OK(), "%s: %v", r.Worker, sum.Failed)
					}()
				}
				wg.Wait()
				require.Equal(t, int64(0), count(t, db,
					"SELECT count(*) FROM (SELECT mailbox_id FROM fetch_runs GROUP BY mailbox_id HAVING count(*) <> ?) x", round),
					"round %d: a mailbox not fetched exactly once per round", round)
				require.Equal(t, int64(mailboxes*round), count(t, db, "SELECT count(DISTINCT message_id) FROM ticket_messages"))
				require.Equal(t, int64(mailboxes*round), count(t, db, "SELECT count(*) FROM ticket_messages"))
				require.Equal(t, int64(0), count(t, db, "SELECT count(*) FROM mailboxes WHERE lease_owner IS NOT NULL"), "leases released")
			}
			for _, r := range runners {
				n := count(t, db, "SELECT count(*) FROM fetch_runs WHERE worker = ?", r.Worker)
				t.Logf("%s made %d of %d runs", r.Worker, n, mailboxes*rounds)
				require.Positive(t, n, "%s did no work: the mailboxes were not shared", r.Worker)
			}
		})
	}
}

// TestDeadWorkersLeaseExpires: a worker that died holding a lease keeps
// others off the mailbox until the lease expires, then another takes over.
func TestDeadWorkersLeaseExpires(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		const user = "orphan@example.com"
		id := b.addMailbox(t, "Orphan", user, b.tokens.IssueRefreshToken(clientID, user))
		b.deliver(t, user, mail(1, ""))
		now := time.Now()
		ok, err := db.Mailboxes().Lease(ctx, id, "dead-worker", now, time.Minute)
		require.NoError(t, err)
		require.True(t, ok)

		b.runner.Now = func() time.Time { return now.Add(30 * time.Second) }
		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, sum.Skipped, "leased by another worker")
		require.Empty(t, sum.Runs)

		b.runner.Now = func() time.Time { return now.Add(61 * time.Second) }
		sum, err = b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Len(t, sum.Runs, 1)
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages"))
	})
}
