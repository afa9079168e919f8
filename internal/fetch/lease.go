package fetch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/fetcherhq/fetcher/internal/store"
)

// DefaultLeaseTTL bounds how long a worker that died keeps other workers
// off its mailboxes. A live worker renews its leases every third of it.
const DefaultLeaseTTL = 2 * time.Minute

// errLeaseLost stops a mailbox whose lease another worker took over (this
// worker stalled past the lease's expiry).
var errLeaseLost = errors.New("the mailbox's lease expired and another worker took it over")

func (r *Runner) leaseTTL() time.Duration {
	if r.LeaseTTL <= 0 {
		return DefaultLeaseTTL
	}
	return r.LeaseTTL
}

var (
	workerOnce sync.Once
	workerName string
)

// WorkerName is the name this worker uses in leases and fetch_runs.
func (r *Runner) WorkerName() string { return r.worker() }

// worker names this worker: host, process id and a random suffix, so two
// processes on one host (an overlapping cron run) are told apart.
func (r *Runner) worker() string {
	if r.Worker != "" {
		return r.Worker
	}
	workerOnce.Do(func() {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		workerName = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
	})
	return workerName
}

// recent reports whether mb was fetched successfully in this round, and
// when it is due: since the pass began at start (another worker got to it
// first), or less than Interval ago. The slack (a tenth of the round, at
// most a minute) lets a mailbox finished a little late in one round still
// be fetched at the start of the next.
func (r *Runner) recent(mb store.Mailbox, start time.Time) (time.Time, bool) {
	if mb.LastSuccessAt.IsZero() {
		return time.Time{}, false
	}
	if !mb.LastSuccessAt.Before(start) {
		return mb.LastSuccessAt.Add(r.Interval), true
	}
	if r.Interval <= 0 {
		return time.Time{}, false
	}
	next := mb.LastSuccessAt.Add(r.Interval - min(r.Interval/10, time.Minute))
	return next, r.now().Before(next)
}

// leased fetches mb under a lease: skipped when another worker holds one;
// the row is read again once leased, since another worker may have just
// fetched it; the lease is renewed while the mailbox runs and released
// after, even when ctx has ended.
func (r *Runner) leased(ctx context.Context, mb store.Mailbox, start time.Time) outcome {
	owner, boxes := r.worker(), r.DB.Mailboxes()
	ok, err := boxes.Lease(ctx, mb.ID, owner, r.now(), r.leaseTTL())
	if err != nil {
		return outcome{id: mb.ID, err: err}
	}
	if !ok {
		r.mailboxLog(mb).Debug("mailbox leased by another worker")
		return outcome{id: mb.ID, skipped: true}
	}
	defer r.release(ctx, mb)
	fresh, err := boxes.Get(ctx, mb.ID)
	if err != nil {
		return outcome{id: mb.ID, err: err}
	}
	if !fresh.Enabled {
		return outcome{id: mb.ID, skipped: true}
	}
	if o, skip := r.notDue(fresh, start); skip {
		return o
	}
	mctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := r.renew(mctx, fresh, cancel)
	run, err := r.FetchMailbox(mctx, fresh)
	stop()
	return outcome{id: mb.ID, run: run, err: err}
}

// renew extends the lease every third of its TTL until the returned stop
// is called; if the lease was lost, it cancels the mailbox's context. It
// goes on after ctx ends: a mailbox stopping on SIGTERM may still wait for
// a server's reply to a notification's final dot, and another worker
// taking the lease meanwhile would send that notification again.
func (r *Runner) renew(ctx context.Context, mb store.Mailbox, cancel context.CancelCauseFunc) (stop func()) {
	ctx = context.WithoutCancel(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(r.leaseTTL() / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ok, err := r.DB.Mailboxes().Renew(ctx, mb.ID, r.worker(), r.now().Add(r.leaseTTL()))
			switch {
			case err != nil:
				// The database is unreachable: the pass fails on its own
				// soon; keep trying while the lease lasts.
				r.mailboxLog(mb).Warn("cannot renew mailbox lease", "error", err)
			case !ok:
				r.mailboxLog(mb).Warn("mailbox lease lost; stopping it")
				cancel(errLeaseLost)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// release gives the lease up with a context of its own: a SIGTERM must not
// leave the mailbox locked for a whole TTL.
func (r *Runner) release(ctx context.Context, mb store.Mailbox) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := retry(rctx, func() error { return r.DB.Mailboxes().Release(rctx, mb.ID, r.worker()) }); err != nil {
		r.mailboxLog(mb).Warn("cannot release mailbox lease; it expires by itself", "error", err)
	}
}
