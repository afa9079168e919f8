// Package fetch runs passes: for every enabled mailbox it gets a fresh
// access token, logs in, stores the new messages as tickets exactly once,
// applies the after-fetch action only after the rows are committed, and
// records the outcome on the mailbox and in fetch_runs. One mailbox's
// failure never stops the others.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

// DefaultMailboxTimeout bounds one mailbox's part of a pass. Work done is
// committed message by message, so a mailbox cut off here carries on from
// where it stopped in the next pass.
const DefaultMailboxTimeout = 10 * time.Minute

// DefaultMaxMessageBytes is the size limit when neither the mailbox nor
// the Runner sets one. Exchange Online accepts up to 150 MB, most servers
// 25 to 50 MB; a message past the limit is stored as its header only and
// left on the server (see storeOversized).
const DefaultMaxMessageBytes = 50 << 20

// DefaultConcurrency is how many mailboxes a worker fetches at once: most
// of a mailbox's time is spent waiting on its server (a pass over a
// mailbox with nothing new is four round trips), so many in parallel make
// a pass cost about the slowest few, not their sum. Memory does not grow
// with it: the fetched messages of all of them share one budget
// (MemoryBudget).
const DefaultConcurrency = 16

// Runner runs passes over the mailboxes in a database.
type Runner struct {
	DB *store.DB
	// OAuth requests tokens; nil uses a default client.
	OAuth *oauth.Client
	// Mailbox tunes mail server connections (TLS roots, timeouts, traces).
	Mailbox *mailbox.Options
	// Logger receives one line per mailbox per pass, and problems.
	Logger *slog.Logger
	// MailboxTimeout bounds each mailbox; 0 means DefaultMailboxTimeout.
	MailboxTimeout time.Duration
	// MaxMessageBytes is the size limit for mailboxes without their own
	// (mailboxes.max_message_bytes); 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// Limits bounds the parsing of each message against hostile mail
	// (header size, MIME depth, decoded size …); zero fields take
	// ticket's defaults. A message past one is stored whole with a
	// parse_error naming it.
	Limits ticket.Limits
	// Concurrency is how many mailboxes are fetched at once; 0 means
	// DefaultConcurrency.
	Concurrency int
	// Interval is the round: a mailbox fetched successfully less than
	// Interval ago (minus a little slack, see recent) is not fetched
	// again, so several workers, or an overlapping cron run, share the
	// mailboxes instead of each fetching all of them. 0 fetches every
	// mailbox on every pass.
	Interval time.Duration
	// Worker names this worker in leases and fetch_runs; "" means
	// host:pid:random.
	Worker string
	// LeaseTTL is how long a mailbox lease holds without renewal, the
	// longest a dead worker keeps others off its mailboxes; 0 means
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// AckLimit and AckWindow bound the acknowledgements sent to one
	// requester: at most AckLimit per AckWindow; 0 means DefaultAckLimit
	// and DefaultAckWindow, a negative AckLimit no limit.
	AckLimit  int
	AckWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics counts outcomes for a monitoring system; nil counts nothing.
	Metrics Metrics
	// Progress follows each mailbox's pass as it happens, for a live
	// display; nil reports nothing.
	Progress Progress

	// MemoryBudget bounds the bytes of fetched messages held at once, over
	// all mailboxes; 0 means DefaultMemoryBudget.
	MemoryBudget int64

	memOnce sync.Once
	mem     *budget

	// accepted holds the outbox rows (id → the server's reply) that a
	// server accepted but that could not be marked sent: the next pass
	// marks them instead of sending them again.
	accepted sync.Map
}

// Metrics receives the outcomes of a worker's passes as they happen (the
// per-mailbox state is in the database, where every worker's passes
// land). Implementations must be safe for concurrent use.
type Metrics interface {
	// MailboxDone: one mailbox's pass ended, "ok", "failed" or
	// "interrupted", after took, with run's counts.
	MailboxDone(outcome string, run store.Run, took time.Duration)
	// TokenRefresh: a token request ended, "ok", "needs_reauth" (a person
	// must act) or "error" (tried again later).
	TokenRefresh(outcome string)
	// Notification: a notification was "sent", "failed" (given up) or put
	// back to "retry" later.
	Notification(outcome string)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) MailboxDone(string, store.Run, time.Duration) {}
func (noMetrics) TokenRefresh(string)                          {}
func (noMetrics) Notification(string)                          {}

func (r *Runner) metrics() Metrics {
	if r.Metrics == nil {
		return noMetrics{}
	}
	return r.Metrics
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return r.Logger
}

// mailboxLog is the logger for lines about mb: each names the mailbox, so
// that searching the log for one mailbox finds every line about it.
func (r *Runner) mailboxLog(mb store.Mailbox) *slog.Logger {
	return r.logger().With("mailbox_id", mb.ID, "mailbox", mb.Name)
}

// OAuthClient is the token client the runner uses.
func (r *Runner) OAuthClient() *oauth.Client {
	if r.OAuth == nil {
		return &oauth.Client{Logger: r.Logger, Now: r.Now}
	}
	return r.OAuth
}

// maxMessageBytes is the size limit for mb.
func (r *Runner) maxMessageBytes(mb store.Mailbox) int64 {
	switch {
	case mb.MaxMessageBytes > 0:
		return mb.MaxMessageBytes
	case r.MaxMessageBytes > 0:
		return r.MaxMessageBytes
	}
	return DefaultMaxMessageBytes
}

func (r *Runner) mailboxTimeout() time.Duration {
	if r.MailboxTimeout == 0 {
		return DefaultMailboxTimeout
	}
	return r.MailboxTimeout
}

// Summary is the outcome of one pass.
type Summary struct {
	Mailboxes int
	// Failed maps the id of each mailbox that failed, or that was not due
	// because it is still failing, to its error.
	Failed map[int64]error
	// Waiting counts mailboxes skipped this pass: backing off, or parked
	// until an admin changes their settings. They are also in Failed.
	Waiting int
	// Skipped counts mailboxes left alone without fault: fetched less
	// than Interval ago, or being fetched by another worker.
	Skipped int
	// Runs holds each mailbox's fetch_runs row, in mailbox order.
	Runs []*store.Run
}

// OK reports whether every mailbox succeeded.
func (s Summary) OK() bool { return len(s.Failed) == 0 }

// outcome is one mailbox's part of a pass.
type outcome struct {
	id      int64
	run     *store.Run
	err     error
	waiting bool // not due: backing off or parked (err says why)
	skipped bool // not due without fault, or leased by another worker
}

// RunOnce makes one pass over every enabled mailbox, Concurrency at a time,
// each under a lease so that no other worker fetches it meanwhile. It
// returns an error only when the mailbox list cannot be read; each
// mailbox's own failure is in Summary.Failed and on its row. When ctx ends
// no further mailbox is started; those in flight stop at once, keeping
// every message already stored.
func (r *Runner) RunOnce(ctx context.Context) (Summary, error) {
	start := r.now() // before the listing, which takes a while over many mailboxes
	boxes, bad, err := r.DB.Mailboxes().ListEnabled(ctx)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Mailboxes: len(boxes) + len(bad), Failed: map[int64]error{}}
	for _, b := range bad {
		sum.Failed[b.ID] = r.badRow(ctx, b)
	}
	for _, o := range r.each(ctx, boxes, start) {
		switch {
		case o.skipped:
			sum.Skipped++
		case o.waiting:
			sum.Waiting++
			sum.Failed[o.id] = o.err
		default:
			if o.run != nil {
				sum.Runs = append(sum.Runs, o.run)
			}
			if o.err != nil {
				sum.Failed[o.id] = o.err
			}
		}
	}
	return sum, ctx.Err()
}

// each runs pass on every mailbox with at most Concurrency at once and
// returns the outcomes in mailbox order; mailboxes not started because ctx
// ended have none. start is when the pass began.
func (r *Runner) each(ctx context.Context, boxes []store.Mailbox, start time.Time) []outcome {
	out := make([]outcome, len(boxes))
	started := make([]bool, len(boxes))
	sem := make(chan struct{}, r.concurrency())
	var wg sync.WaitGroup
	for i, mb := range boxes {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started[i] = true
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = r.pass(ctx, mb, start)
		}()
	}
	wg.Wait()
	kept := out[:0]
	for i, o := range out {
		if started[i] {
			kept = append(kept, o)
		}
	}
	return kept
}

// pass is one mailbox's part of a pass: skipped when not due, else
// fetched under a lease.
func (r *Runner) pass(ctx context.Context, mb store.Mailbox, start time.Time) outcome {
	if o, skip := r.notDue(mb, start); skip {
		return o
	}
	return r.leased(ctx, mb, start)
}

// notDue returns the outcome of a mailbox that is not to be fetched now.
func (r *Runner) notDue(mb store.Mailbox, start time.Time) (outcome, bool) {
	if ok, why := due(mb, r.now(), r.DB.Keyring()); !ok {
		r.mailboxLog(mb).Info("mailbox skipped", "status", mb.Status, "reason", why)
		return outcome{id: mb.ID, waiting: true, err: errors.New(why)}, true
	}
	if next, ok := r.recent(mb, start); ok {
		r.mailboxLog(mb).Debug("mailbox fetched recently", "next_due", next)
		return outcome{id: mb.ID, skipped: true}, true
	}
	return outcome{}, false
}

// memory is the worker's budget for fetched messages not yet stored.
func (r *Runner) memory() *budget {
	r.memOnce.Do(func() {
		size := r.MemoryBudget
		if size <= 0 {
			size = DefaultMemoryBudget
		}
		r.mem = newBudget(size)
	})
	return r.mem
}

func (r *Runner) concurrency() int {
	if r.Concurrency <= 0 {
		return DefaultConcurrency
	}
	return r.Concurrency
}

// badRow records a mailbox row that cannot even be read.
func (r *Runner) badRow(ctx context.Context, b store.BadRow) error {
	err := fmt.Errorf("the mailbox row cannot be read; check its timestamp, number and boolean columns for values of the wrong type: %w", b.Err)
	if se := (*store.SecretError)(nil); errors.As(b.Err, &se) {
		err = se // it says which column and what to do
	}
	r.logger().Error("mailbox row unreadable", "mailbox_id", b.ID, "error", err)
	f := store.Failure{Status: store.StatusFailing, Message: err.Error()}
	if rerr := r.DB.Mailboxes().RecordFailure(ctx, b.ID, f); rerr != nil {
		r.logger().Error("cannot record mailbox outcome", "mailbox_id", b.ID, "error", rerr)
	}
	return err
}
