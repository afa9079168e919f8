package fetch_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// recorder is a fetch.Metrics that counts what it is told.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
	run    store.Run // the counts of the mailbox passes, summed
}

func (r *recorder) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[key]++
}

func (r *recorder) MailboxDone(outcome string, run store.Run, took time.Duration) {
	r.add("run:" + outcome)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run.MessagesFetched += run.MessagesFetched
	r.run.TicketsCreated += run.TicketsCreated
	r.run.MessagesAppended += run.MessagesAppended
	if took <= 0 {
		r.counts["bad duration"]++
	}
}

func (r *recorder) TokenRefresh(outcome string) { r.add("token:" + outcome) }
func (r *recorder) Notification(outcome string) { r.add("notification:" + outcome) }

func (r *recorder) snapshot() (map[string]int, store.Run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.counts {
		out[k] = v
	}
	return out, r.run
}

// TestPassReportsMetrics: the runner tells its Metrics each mailbox's
// outcome and counts, each token request's outcome and each
// notification's, where they are known.
func TestPassReportsMetrics(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var deferred atomic.Int32
		b := setupSend(t, db, mailboxtest.SMTPOptions{
			OnRcpt: func(to string) *smtp.SMTPError {
				if to == adminAddr {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
				}
				return nil
			},
			OnData: func(mailboxtest.SMTPMessage) *smtp.SMTPError {
				if deferred.Add(1) == 1 {
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
				}
				return nil
			},
		})
		rec := &recorder{}
		b.runner.Metrics = rec
		b.addMailbox(t, "Dead", "dead@example.com", "revoked-long-ago")
		b.deliver(t, b.user, mail(1, ""), mail(2, "In-Reply-To: <q1@example.org>\r\n"))

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.Len(t, sum.Failed, 1, "the dead mailbox fails")
		counts, run := rec.snapshot()
		require.Equal(t, map[string]int{
			"run:ok": 1, "run:failed": 1,
			"token:ok": 2, "token:needs_reauth": 1, // to fetch, to send; the dead token
			"notification:failed": 1, "notification:retry": 1, // the unknown admin, the 451
		}, counts)
		require.Equal(t, store.Run{MessagesFetched: 2, TicketsCreated: 1, MessagesAppended: 1}, run)

		require.NoError(t, db.Exec(ctx, "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending'", time.Now().Add(-time.Second)))
		_, err = b.runner.RunOnce(ctx)
		require.NoError(t, err)
		counts, _ = rec.snapshot()
		require.Equal(t, 1, counts["notification:sent"], "the acknowledgement went out on its second attempt")
		require.Equal(t, 2, counts["run:ok"])
		require.Equal(t, 1, counts["run:failed"], "the parked mailbox is waiting, not run again")
	})
}
