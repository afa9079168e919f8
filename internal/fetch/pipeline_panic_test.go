package fetch_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// panicky is a progress display that panics at the at-th message handled:
// a bug in code the pipeline's workers call.
type panicky struct{ at int }

func (panicky) MailboxStarted(fetch.ProgressMailbox) {}
func (panicky) MailboxTotal(int64, int)              {}
func (p panicky) MessageDone(_ int64, done, _ int) {
	if done == p.at {
		panic("boom")
	}
}
func (panicky) MailboxEnded(int64, string, store.Run, time.Duration) {}

// pipelineGoroutines counts the pipeline's workers still running.
func pipelineGoroutines() int {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return strings.Count(stacks, "(*pipeline).writer") + strings.Count(stacks, "(*pipeline).parser")
}

// TestPanicInThePipelineFailsOnlyItsMailbox: a panic in the writer (which
// stores a batch of small messages) or in the mailbox's own goroutine
// (which stores a large message) is that mailbox's failure, as before the
// pipeline: the worker goes on, the other mailbox is stored, and no worker
// goroutine outlives the pass.
func TestPanicInThePipelineFailsOnlyItsMailbox(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		large bool // the panic comes while storing a large message
	}{{"writer", false}, {"reader", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := storetest.SQLite(t)
			b := setup(t, db)
			b.runner.Concurrency = 1
			at := 1
			if tc.large {
				at = 2
			}
			b.runner.Progress = panicky{at: at}
			const user = "w@example.com"
			b.addMailbox(t, "W", user, b.tokens.IssueRefreshToken(clientID, user))
			b.deliver(t, user, mail(1, ""))
			if tc.large {
				b.deliver(t, user, bigMail(2<<20))
			}
			before := pipelineGoroutines()
			sum, err := b.runner.RunOnce(context.Background())
			require.NoError(t, err)
			require.Len(t, sum.Failed, 1, "the panic is the mailbox's failure")
			for _, e := range sum.Failed {
				require.ErrorContains(t, e, "internal error")
			}
			require.Eventually(t, func() bool { return pipelineGoroutines() <= before }, 5*time.Second, 20*time.Millisecond,
				"the pipeline's workers stop with the pass")
			require.Contains(t, b.logs.String(), "panicked")
		})
	}
}
