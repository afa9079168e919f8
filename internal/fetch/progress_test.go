package fetch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// progressRecorder is a fetch.Progress that writes down every call, by
// mailbox.
type progressRecorder struct {
	mu     sync.Mutex
	events map[int64][]string
}

func (p *progressRecorder) add(id int64, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.events == nil {
		p.events = map[int64][]string{}
	}
	p.events[id] = append(p.events[id], fmt.Sprintf(format, args...))
}

func (p *progressRecorder) MailboxStarted(mb fetch.ProgressMailbox) {
	p.add(mb.ID, "start %s %s", mb.Name, mb.Protocol)
}

func (p *progressRecorder) MailboxTotal(id int64, total int) { p.add(id, "total %d", total) }

func (p *progressRecorder) MessageDone(id int64, done, created int) {
	p.add(id, "done %d created %d", done, created)
}

func (p *progressRecorder) MailboxEnded(id int64, outcome string, run store.Run, took time.Duration) {
	p.add(id, "end %s fetched %d created %d positive time %t", outcome, run.MessagesFetched, run.TicketsCreated, took > 0)
}

// take returns the calls so far and forgets them.
func (p *progressRecorder) take() map[int64][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.events
	p.events = nil
	return out
}

// TestProgressFollowsEachMailbox: the hook hears, for each mailbox of a
// pass and in order, that it started, how many new messages it has, each
// message handled with the tickets opened so far, and how it ended; a
// later pass counts only the messages new to it.
func TestProgressFollowsEachMailbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		rec := &progressRecorder{}
		b.runner.Progress = rec
		b.runner.Concurrency = 3 // the mailboxes report at the same time
		const user = "three@example.com"
		three := b.addMailbox(t, "Three", user, b.tokens.IssueRefreshToken(clientID, user))
		empty := b.addMailbox(t, "Empty", "empty@example.com", b.tokens.IssueRefreshToken(clientID, "empty@example.com"))
		dead := b.addMailbox(t, "Dead", "dead@example.com", "revoked-long-ago")
		b.deliver(t, user, mail(1, ""), mail(2, "In-Reply-To: <q1@example.org>\r\n"), mail(3, ""))

		sum, err := b.runner.RunOnce(context.Background())
		require.NoError(t, err)
		require.Len(t, sum.Failed, 1, "the dead mailbox fails")
		require.Equal(t, map[int64][]string{
			three: {"start Three imap", "total 3",
				"done 1 created 1", "done 2 created 1", "done 3 created 2", // message 2 is a reply
				"end ok fetched 3 created 2 positive time true"},
			empty: {"start Empty imap", "total 0", "end ok fetched 0 created 0 positive time true"},
			dead:  {"start Dead imap", "end failed fetched 0 created 0 positive time true"},
		}, rec.take())

		b.deliver(t, user, mail(4, ""))
		_, err = b.runner.RunOnce(context.Background())
		require.NoError(t, err)
		got := rec.take()
		require.Equal(t, []string{"start Three imap", "total 1", "done 1 created 1",
			"end ok fetched 1 created 1 positive time true"}, got[three])
		require.NotContains(t, got, dead, "the parked mailbox is not fetched, so not reported")
	})
}

// TestProgressCountsOnlyNewPOP3Messages: POP3 lists every message left on
// the server each time; those stored by an earlier pass are not part of
// the total.
func TestProgressCountsOnlyNewPOP3Messages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupPOP3(t, db, "mark_seen") // POP3 keeps the messages
		rec := &progressRecorder{}
		b.runner.Progress = rec
		for i := 1; i <= 2; i++ {
			_, err := b.pop.Deliver("pop@example.com", []byte(popMail(i)))
			require.NoError(t, err)
		}
		require.True(t, b.pass(t).OK())
		require.Equal(t, []string{"start POP3 - OAuth pop3", "total 2", "done 1 created 1", "done 2 created 2",
			"end ok fetched 2 created 2 positive time true"}, rec.take()[b.id])

		_, err := b.pop.Deliver("pop@example.com", []byte(popMail(3)))
		require.NoError(t, err)
		require.True(t, b.pass(t).OK())
		require.Equal(t, []string{"start POP3 - OAuth pop3", "total 1", "done 1 created 1",
			"end ok fetched 1 created 1 positive time true"}, rec.take()[b.id], "the two stored before are not counted")
	})
}
