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
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
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

// actionBatch is how many stored messages wait for their after-fetch action
// before it is sent: fewer round trips, while a crash still leaves at most
// this many actions owed (they are retried on the next pass).
const actionBatch = 50

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
	// Now is the clock; nil means time.Now.
	Now func() time.Time
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
	// Runs holds each mailbox's fetch_runs row, in mailbox order.
	Runs []*store.Run
}

// OK reports whether every mailbox succeeded.
func (s Summary) OK() bool { return len(s.Failed) == 0 }

// RunOnce makes one pass over every enabled mailbox, one after another. It
// returns an error only when the mailbox list cannot be read; each
// mailbox's own failure is in Summary.Failed and on its row.
func (r *Runner) RunOnce(ctx context.Context) (Summary, error) {
	boxes, bad, err := r.DB.Mailboxes().ListEnabled(ctx)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Mailboxes: len(boxes) + len(bad), Failed: map[int64]error{}}
	for _, b := range bad {
		sum.Failed[b.ID] = r.badRow(ctx, b)
	}
	for _, mb := range boxes {
		if ctx.Err() != nil {
			break
		}
		if ok, why := due(mb, r.now()); !ok {
			r.logger().Info("mailbox skipped", "mailbox_id", mb.ID, "mailbox", mb.Name, "status", mb.Status, "reason", why)
			sum.Waiting++
			sum.Failed[mb.ID] = errors.New(why)
			continue
		}
		run, err := r.FetchMailbox(ctx, mb)
		if run != nil {
			sum.Runs = append(sum.Runs, run)
		}
		if err != nil {
			sum.Failed[mb.ID] = err
		}
	}
	return sum, ctx.Err()
}

// badRow records a mailbox row that cannot even be read.
func (r *Runner) badRow(ctx context.Context, b store.BadRow) error {
	err := fmt.Errorf("the mailbox row cannot be read; check its timestamp, number and boolean columns for values of the wrong type: %w", b.Err)
	r.logger().Error("mailbox row unreadable", "mailbox_id", b.ID, "error", err)
	f := store.Failure{Status: store.StatusFailing, Message: err.Error()}
	if rerr := r.DB.Mailboxes().RecordFailure(ctx, b.ID, f); rerr != nil {
		r.logger().Error("cannot record mailbox outcome", "mailbox_id", b.ID, "error", rerr)
	}
	return err
}
