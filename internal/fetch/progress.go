package fetch

import (
	"time"

	"github.com/fetcherhq/fetcher/internal/store"
)

// Progress follows each mailbox through a pass as it happens, for a live
// display such as a terminal's. Calls for one mailbox come from one
// goroutine, in order: MailboxStarted, then MailboxTotal and MessageDone
// any number of times, then MailboxEnded. Mailboxes run at the same time
// (Runner.Concurrency), so implementations must be safe for concurrent
// use; and they must return quickly, since MessageDone is called in the
// fetch loop after every message.
type Progress interface {
	// MailboxStarted: mb's part of the pass began.
	MailboxStarted(mb ProgressMailbox)
	// MailboxTotal: the mailbox's session listed its new messages; total
	// is how many this pass handles, those already done included (a
	// session that reconnects lists again).
	MailboxTotal(id int64, total int)
	// MessageDone: done of the total are handled (stored, or gone from
	// the server before they could be fetched), and created new tickets
	// were opened so far.
	MessageDone(id int64, done, created int)
	// MailboxEnded: the mailbox's part of the pass ended, "ok", "failed"
	// or "interrupted" (as for Metrics), after took, with run's counts.
	MailboxEnded(id int64, outcome string, run store.Run, took time.Duration)
}

// ProgressMailbox is what Progress is told of a mailbox: enough to name
// it on a screen, and none of its secrets.
type ProgressMailbox struct {
	ID       int64
	Name     string
	Protocol string
}

// noProgress reports to nobody.
type noProgress struct{}

func (noProgress) MailboxStarted(ProgressMailbox)                       {}
func (noProgress) MailboxTotal(int64, int)                              {}
func (noProgress) MessageDone(int64, int, int)                          {}
func (noProgress) MailboxEnded(int64, string, store.Run, time.Duration) {}

// meter reports one mailbox's pass to Runner.Progress. It keeps the count
// of messages handled across the pass's sessions, so that a session that
// reconnects (an access token expired mid-pass) carries the numbers on
// instead of starting them again.
type meter struct {
	p    Progress
	id   int64
	done int
}

// startMeter tells Progress that mb started and returns its meter.
func (r *Runner) startMeter(mb store.Mailbox) *meter {
	p := r.Progress
	if p == nil {
		p = noProgress{}
	}
	p.MailboxStarted(ProgressMailbox{ID: mb.ID, Name: mb.Name, Protocol: mb.Protocol})
	return &meter{p: p, id: mb.ID}
}

// listed reports that a session has n new messages to handle.
func (m *meter) listed(n int) { m.p.MailboxTotal(m.id, m.done+n) }

// handled reports one more message handled; run holds the counts so far.
func (m *meter) handled(run *store.Run) {
	m.done++
	m.p.MessageDone(m.id, m.done, run.TicketsCreated)
}

// ended reports the mailbox's outcome.
func (m *meter) ended(outcome string, run store.Run, took time.Duration) {
	m.p.MailboxEnded(m.id, outcome, run, took)
}
