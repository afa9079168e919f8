package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

// errInterrupted marks a mailbox stopped because the fetcher is shutting
// down: not the mailbox's fault.
var errInterrupted = errors.New("interrupted: the fetcher was stopping")

// FetchMailbox runs one mailbox's part of a pass and records the outcome: a
// fetch_runs row, and the mailbox's status, last_error and
// last_success_at. The returned run is nil only when even the fetch_runs
// row could not be written.
func (r *Runner) FetchMailbox(ctx context.Context, mb store.Mailbox) (*store.Run, error) {
	log := r.mailboxLog(mb)
	start := r.now()
	m := r.startMeter(mb)
	r.warn(ctx, log, mb)
	run, err := r.DB.Runs().Start(ctx, mb.ID, r.worker())
	if err != nil {
		log.Error("cannot record fetch run", "error", err)
		r.done(log, m, store.Run{}, err, r.now().Sub(start))
		return nil, err
	}
	mctx, cancel := context.WithTimeout(ctx, r.mailboxTimeout())
	err = r.fetchGuarded(mctx, mb, run, m)
	switch {
	case err != nil && ctx.Err() != nil:
		err = fmt.Errorf("%w: %w", interruption(ctx), err)
	case err != nil && mctx.Err() != nil && run.MessagesFetched > 0:
		// A large backlog (the first pass over a full inbox) takes several
		// passes; progress is not a failure.
		log.Info("mailbox time budget used; the rest follows next pass",
			"fetched", run.MessagesFetched, "budget", r.mailboxTimeout())
		err = nil
	case err != nil && mctx.Err() != nil:
		err = fmt.Errorf("took longer than %s (FETCHER_MAILBOX_TIMEOUT); the %d messages stored are kept and the rest follow next pass: %w",
			r.mailboxTimeout(), run.MessagesFetched, err)
	}
	cancel()
	// The outcome is recorded even when ctx was cancelled mid-pass (a
	// SIGTERM): the admin must see where the mailbox stands.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer rcancel()
	r.record(rctx, log, mb, run, err)
	// Notifications go out whatever the fetching did: those queued by
	// this pass, and earlier ones still owed.
	r.sendOutbox(ctx, log, mb)
	r.done(log, m, *run, err, r.now().Sub(start))
	return run, err
}

// done reports a mailbox's part of a pass: the one "mailbox done" line
// with its counts, the metrics and the progress display.
func (r *Runner) done(log *slog.Logger, m *meter, run store.Run, err error, took time.Duration) {
	outcome := runOutcome(err)
	attrs := []any{
		"outcome", outcome, "ok", err == nil,
		"fetched", run.MessagesFetched, "tickets_created", run.TicketsCreated,
		"appended", run.MessagesAppended, "skipped", run.MessagesSkipped,
		"duration_ms", took.Milliseconds(),
	}
	if err != nil {
		// run.Error is the message recorded on the run, with the advice
		// and the credentials hidden; the bare error only when the run
		// could not be recorded at all.
		why := run.Error
		if why == "" {
			why = err.Error()
		}
		attrs = append(attrs, "error", why)
	}
	log.Info("mailbox done", attrs...)
	r.metrics().MailboxDone(outcome, run, took)
	m.ended(outcome, run, took)
}

// runOutcome names a mailbox pass's outcome for Metrics: a shutdown or a
// lost lease is no failure of the mailbox.
func runOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, errInterrupted) || errors.Is(err, errLeaseLost):
		return "interrupted"
	}
	return "failed"
}

// retry calls write until it succeeds or ctx ends, waiting a little longer
// each time (from 250 ms to 2 s). The outcome of a mailbox is written right
// after it failed, often because the database went away: a single attempt
// would leave the mailbox looking healthy, its run unfinished and (for
// the lease) held, until the database is back.
func retry(ctx context.Context, write func() error) error {
	wait := 250 * time.Millisecond
	for {
		err := write()
		if err == nil || store.IsDataError(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// interruption says why ctx ended: the lease was lost, or the fetcher is
// stopping.
func interruption(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errLeaseLost) {
		return errLeaseLost
	}
	return errInterrupted
}

// interruptionOf is the interruption err wraps.
func interruptionOf(err error) error {
	if errors.Is(err, errLeaseLost) {
		return errLeaseLost
	}
	return errInterrupted
}

func (r *Runner) record(ctx context.Context, log *slog.Logger, mb store.Mailbox, run *store.Run, err error) {
	var rerr error
	switch {
	case errors.Is(err, errInterrupted) || errors.Is(err, errLeaseLost):
		// The fetcher is shutting down, or another worker took over:
		// nothing is wrong with the mailbox, so its status stays as it
		// was; the run says why it stopped.
		run.Error = interruptionOf(err).Error()
		log.Info("mailbox interrupted", "reason", run.Error, "fetched", run.MessagesFetched)
	case err == nil:
		rerr = retry(ctx, func() error { return r.DB.Mailboxes().RecordSuccess(ctx, mb.ID) })
	default:
		f := failure(mb, err, r.now(), r.DB.Keyring())
		run.Error = f.Message
		log.Warn("mailbox failed", "status", f.Status, "error", f.Message,
			"next_attempt_at", f.NextAttempt, "waits_for_new_settings", f.Fingerprint != "")
		rerr = retry(ctx, func() error { return r.DB.Mailboxes().RecordFailure(ctx, mb.ID, f) })
	}
	if ferr := retry(ctx, func() error { return r.DB.Runs().Finish(ctx, run) }); ferr != nil {
		rerr = errors.Join(rerr, ferr)
	}
	if rerr != nil {
		log.Error("cannot record mailbox outcome", "error", rerr)
	}
}

// warn stores and logs what the admin should act on soon, such as a client
// secret about to expire.
func (r *Runner) warn(ctx context.Context, log *slog.Logger, mb store.Mailbox) {
	w := warning(mb, r.now())
	if w == "" {
		w = r.sendingWarning(ctx, log, mb)
	}
	if w != "" {
		log.Warn("mailbox needs attention soon", "warning", w)
	}
	if w == mb.Warning {
		return
	}
	if err := r.DB.Mailboxes().SetWarning(ctx, mb.ID, w); err != nil {
		log.Error("cannot store mailbox warning", "error", err)
	}
}

// fetch runs a session; when the server ends it because the access token
// expired mid-pass (Exchange's "BYE … AccessTokenExpired"), it refreshes
// the token and runs one more session, which carries on from the cursor.
func (r *Runner) fetch(ctx context.Context, mb store.Mailbox, run *store.Run, m *meter) error {
	if err := Validate(mb); err != nil {
		return err
	}
	mb.AfterFetch = effectiveAction(mb)
	err := r.session(ctx, mb, run, m, false)
	if mailbox.TokenExpired(err) && mb.AuthType == "oauth2" && ctx.Err() == nil {
		r.mailboxLog(mb).Info("server ended the session because the access token expired; refreshing and reconnecting")
		err = r.session(ctx, mb, run, m, true)
	}
	return err
}

// session logs in, settles actions still owed from earlier passes, then
// stores every new message. forceRefresh gets a new access token first.
func (r *Runner) session(ctx context.Context, mb store.Mailbox, run *store.Run, m *meter, forceRefresh bool) (err error) {
	sess, err := r.open(ctx, mb, forceRefresh)
	if err != nil {
		return err
	}
	var unsaved *unsavedError
	defer func() {
		// A failed LOGOUT changes nothing: every message is committed.
		// But a session with a fetched message left unsaved must not end
		// with POP3's QUIT (see mailbox.Session.Abort).
		if errors.As(err, &unsaved) {
			_ = sess.Abort()
			return
		}
		_ = sess.Close()
	}()
	tickets := r.DB.Tickets()
	cur, err := tickets.Cursor(ctx, mb.ID, mb.Folder)
	if err != nil {
		return err
	}
	list, err := sess.List(ctx, mailbox.Cursor{UIDValidity: cur.UIDValidity, LastUID: cur.LastUID})
	if err != nil {
		return err
	}
	// An action the server refuses (say, move_to_folder is missing) must
	// not stop new mail from being stored: its error is reported at the end.
	actionErr := r.settle(ctx, mb, sess, list)
	if list.Cursor.UIDValidity != cur.UIDValidity && len(list.Messages) == 0 {
		err := tickets.SaveCursor(ctx, store.Cursor{MailboxID: mb.ID, Folder: mb.Folder, UIDValidity: list.Cursor.UIDValidity})
		if err != nil {
			return err
		}
	}
	return r.store(ctx, mb, sess, list.Messages, run, m, actionErr)
}

// store fetches, parses and saves each new message in UID order, applying
// the after-fetch action in batches once the rows are committed. Small
// messages are fetched in batches (see mailbox.Session.Stream) and go
// through a pipeline that parses them in parallel and saves them in
// transactions of many; large ones are fetched and saved one at a time.
// A message that cannot be saved stops the mailbox with the cursor just
// before it, so it is fetched again next pass; one that cannot be parsed
// is still saved, with parse_error set. Once an action fails, the rest
// stay owed in the ledger for the next pass, and storing goes on.
func (r *Runner) store(ctx context.Context, mb store.Mailbox, sess mailbox.Session, msgs []mailbox.Message, run *store.Run, m *meter, actionErr error) error {
	known, err := r.DB.Tickets().Known(ctx, mb.ID, keysOf(msgs))
	if err != nil {
		return errors.Join(err, actionErr)
	}
	todo := msgs[:0:0]
	for _, msg := range msgs {
		if !known[msg.Key] {
			todo = append(todo, msg)
		}
	}
	m.listed(len(todo))
	acts := &actions{r: r, mb: mb, sess: sess, err: actionErr}
	p := r.startPipeline(ctx, mb, run, m)
	closed := false
	defer func() {
		// Also on a panic (recovered by fetchGuarded): the workers must
		// not outlive the mailbox's pass, nor go on writing to run.
		if !closed {
			_ = p.close()
		}
	}()
	err = r.storeAll(ctx, mb, sess, todo, p, acts)
	perr := p.close()
	closed = true
	if err == nil && perr != nil {
		err = &unsavedError{perr}
	}
	acts.owe(p.take())
	return errors.Join(err, acts.flush(ctx))
}

// storeAll feeds todo to the pipeline, batch by batch, and sends the
// after-fetch actions of what is committed between batches.
func (r *Runner) storeAll(ctx context.Context, mb store.Mailbox, sess mailbox.Session, todo []mailbox.Message, p *pipeline, acts *actions) error {
	limit := r.maxMessageBytes(mb)
	for len(todo) > 0 {
		chunk := nextChunk(todo, limit)
		var err error
		if len(chunk) == 0 {
			err = r.storeLarge(ctx, mb, sess, todo[0], p, acts)
			chunk = todo[:1]
		} else {
			chunk, err = r.streamChunk(ctx, mb, sess, chunk, p, acts)
		}
		if err != nil {
			return err
		}
		todo = todo[len(chunk):]
		acts.owe(p.take())
		acts.send(ctx)
	}
	return nil
}

// nextChunk returns the small messages at the head of todo, up to
// chunkMessages and chunkBytes; none when the first is large.
func nextChunk(todo []mailbox.Message, limit int64) []mailbox.Message {
	size := int64(0)
	for i, msg := range todo {
		if msg.Size > streamLimit || msg.Size > limit || i == chunkMessages || (i > 0 && size+msg.Size > chunkBytes) {
			return todo[:i]
		}
		size += msg.Size
	}
	return todo
}

// errOverLimit stops a batch at a message that turned out larger than
// listed and over the limit: it is stored on its own, as a large one.
type errOverLimit struct {
	msg  mailbox.Message
	size int64
}

func (e *errOverLimit) Error() string { return "message over the size limit" }

// streamChunk fetches chunk in one batch into the pipeline. It returns
// the part of chunk it dealt with: all of it, or up to and including a
// message found over the size limit, which it stores as such.
func (r *Runner) streamChunk(ctx context.Context, mb store.Mailbox, sess mailbox.Session, chunk []mailbox.Message, p *pipeline, acts *actions) ([]mailbox.Message, error) {
	limit := r.maxMessageBytes(mb)
	for i := range chunk {
		chunk[i].MaxBytes = limit
	}
	var over *errOverLimit
	at := -1
	err := sess.Stream(ctx, chunk, func(msg mailbox.Message, raw []byte, err error) error {
		at++
		var tooLarge *mailbox.TooLargeError
		switch {
		case errors.As(err, &tooLarge):
			return &errOverLimit{msg: msg, size: tooLarge.Size}
		case errors.Is(err, mailbox.ErrGone):
			return p.add(msg, nil, err)
		case err != nil:
			return err
		}
		return p.add(msg, raw, nil)
	})
	if errors.As(err, &over) {
		msg := over.msg
		msg.Size = over.size // the server listed less than it sent
		return chunk[:at+1], r.storeLarge(ctx, mb, sess, msg, p, acts)
	}
	if err != nil {
		return nil, &unsavedError{err}
	}
	return chunk, nil
}

// storeLarge stores one message over streamLimit, or over the size limit,
// on its own: once the pipeline has stored everything before it (the
// cursor moves in UID order), holding the memory budget for its size so
// that large messages of several mailboxes are not in memory at once.
func (r *Runner) storeLarge(ctx context.Context, mb store.Mailbox, sess mailbox.Session, msg mailbox.Message, p *pipeline, acts *actions) error {
	if err := p.wait(); err != nil {
		return &unsavedError{err}
	}
	save, need := r.storeOne, msg.Size
	if msg.Size > r.maxMessageBytes(mb) {
		save, need = r.storeOversized, mailbox.MaxHeaderBytes
	}
	held, err := r.memory().acquire(ctx, need)
	if err != nil {
		return &unsavedError{err}
	}
	defer r.memory().release(held)
	saved, err := save(ctx, mb, sess, msg)
	if errors.Is(err, mailbox.ErrGone) {
		p.vanished(&item{msg: msg})
		return nil
	}
	if err != nil {
		return &unsavedError{err}
	}
	p.run.Count(saved.Outcome)
	p.m.handled(p.run)
	if !saved.Partial {
		acts.owe([]string{msg.Key})
	}
	return nil
}

// unsavedError is a message fetched (or being fetched) but not stored.
type unsavedError struct{ err error }

func (e *unsavedError) Error() string { return e.err.Error() }

func (e *unsavedError) Unwrap() error { return e.err }

// actions batches after-fetch actions of stored messages.
type actions struct {
	r    *Runner
	mb   store.Mailbox
	sess mailbox.Session
	owed []string
	// err is the first action failure; after it nothing more is sent.
	err error
}

// owe adds stored messages whose action is to be sent.
func (a *actions) owe(keys []string) { a.owed = append(a.owed, keys...) }

// send sends the owed action in one command, unless an action failed
// before.
func (a *actions) send(ctx context.Context) {
	if a.err == nil && len(a.owed) > 0 {
		a.err = a.r.apply(ctx, a.mb, a.sess, a.owed)
	}
	a.owed = a.owed[:0]
}

func (a *actions) flush(ctx context.Context) error {
	a.send(ctx)
	return a.err
}

func (r *Runner) storeOne(ctx context.Context, mb store.Mailbox, sess mailbox.Session, m mailbox.Message) (store.Saved, error) {
	m.MaxBytes = r.maxMessageBytes(mb)
	raw, err := sess.Fetch(ctx, m)
	var tooLarge *mailbox.TooLargeError
	if errors.As(err, &tooLarge) {
		m.Size = tooLarge.Size // the server listed less than it sent
		return r.storeOversized(ctx, mb, sess, m)
	}
	if err != nil {
		return store.Saved{}, err
	}
	f := fetched(mb, m, raw, ticket.ParseWith(raw, r.Limits))
	f.Notify = r.notifying(mb)
	return r.save(ctx, mb, f)
}

// save stores f. When the database refuses a decoded field (a value past
// an index or size limit), the message is kept as raw bytes with the
// reason, rather than stall the mailbox on it forever. Other errors (the
// database down or busy) stop the pass, and the message is fetched again
// next time with all its fields.
func (r *Runner) save(ctx context.Context, mb store.Mailbox, f store.Fetched) (store.Saved, error) {
	saved, err := r.DB.Tickets().Save(ctx, f)
	if err == nil || !store.IsDataError(err) {
		return saved, err
	}
	f.Parsed = rawOnly(f.Raw, err)
	if saved, rerr := r.DB.Tickets().Save(ctx, f); rerr == nil {
		r.mailboxLog(mb).Warn("message stored as raw bytes only", "source_key", f.SourceKey, "error", err)
		return saved, nil
	}
	return saved, err
}

// fetched is what is saved for message m of mailbox mb.
func fetched(mb store.Mailbox, m mailbox.Message, raw []byte, parsed *ticket.Message) store.Fetched {
	f := store.Fetched{
		MailboxID: mb.ID, SourceKey: m.Key, Raw: raw, Parsed: parsed,
		Action: mb.AfterFetch, AutoReplyTickets: mb.AutoReplyTickets,
	}
	if m.Cursor.UIDValidity != 0 { // IMAP; POP3 has no cursor, the ledger is its memory
		f.Cursor = &store.Cursor{MailboxID: mb.ID, Folder: mb.Folder, UIDValidity: m.Cursor.UIDValidity, LastUID: m.Cursor.LastUID}
	}
	return f
}

// storeOversized stores a message over the size limit as its header only,
// with a parse_error saying so, and leaves it on the server untouched (no
// flag, move or delete: what was not stored whole must not be lost). Staff
// see who wrote and about what; the admin can raise the limit and fetch
// it again (docs/configuration.md). A server without a header command
// (POP3 without TOP) gives a row with the size and the reason only.
func (r *Runner) storeOversized(ctx context.Context, mb store.Mailbox, sess mailbox.Session, m mailbox.Message) (store.Saved, error) {
	limit := r.maxMessageBytes(mb)
	head, err := sess.FetchHeader(ctx, m)
	if cerr := ctx.Err(); cerr != nil {
		return store.Saved{}, cerr
	}
	var netErr *mailbox.NetError
	if errors.Is(err, mailbox.ErrGone) || errors.As(err, &netErr) {
		return store.Saved{}, err
	}
	parsed := ticket.ParseWith(head, r.Limits)
	var found string // what parsing the header found; nothing to add when there is none
	if err == nil && len(head) > 0 {
		found = parsed.ParseError
	}
	parsed.ParseError = oversizedNote(m.Size, limit, err, found)
	f := fetched(mb, m, head, parsed)
	f.Size, f.Action = max(m.Size, 1), store.ActionKeep
	f.Notify = r.notifying(mb)
	r.mailboxLog(mb).Warn("message over the size limit: stored its header only and left it on the server",
		"source_key", m.Key, "size_bytes", m.Size, "limit_bytes", limit)
	saved, err := r.save(ctx, mb, f)
	saved.Partial = true
	return saved, err
}

// oversizedNote is the parse_error of a message over the size limit,
// followed by what parsing its header found (a header past the header
// limits, say).
func oversizedNote(size, limit int64, headerErr error, headerProblems string) string {
	note := fmt.Sprintf("message not fetched: it is %d bytes, over this mailbox's limit of %d bytes; "+
		"only its header is stored and it was left on the server untouched. "+
		"Do this: raise mailboxes.max_message_bytes (or FETCHER_MAX_MESSAGE_BYTES) so that later mail "+
		"this large is fetched whole; for this one, open it in a mail client, or (IMAP) move it to "+
		"another folder and back so that the next run fetches it whole", size, limit)
	if headerErr != nil {
		note += fmt.Sprintf(" (the header could not be read either: %v)", headerErr)
	}
	if headerProblems != "" {
		note += "\n" + headerProblems
	}
	return ticket.Clean(note)
}

// rawOnly is what is stored of a message whose decoded fields the
// database refused.
func rawOnly(raw []byte, err error) *ticket.Message {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return &ticket.Message{
		Size:       int64(len(raw)),
		ParseError: ticket.Clean("the decoded message could not be stored, only its raw bytes are kept: " + msg),
	}
}

// settle applies the actions owed for messages stored by an earlier pass
// that stopped before the server confirmed them. With a complete listing
// (POP3), an owed message no longer listed is gone, which is what a
// delete wanted, and ledger entries of gone messages are forgotten.
func (r *Runner) settle(ctx context.Context, mb store.Mailbox, sess mailbox.Session, list mailbox.Listing) error {
	pending, err := r.DB.Tickets().Pending(ctx, mb.ID, list.KeyPrefix)
	if err != nil {
		return err
	}
	if list.Complete {
		if pending, err = r.settleGone(ctx, mb, list, pending); err != nil {
			return err
		}
	}
	byAction := map[string][]string{}
	for _, p := range pending {
		byAction[p.Action] = append(byAction[p.Action], p.SourceKey)
	}
	for action, keys := range byAction {
		if err := r.applyAction(ctx, mb, sess, action, keys); err != nil {
			return err
		}
	}
	return nil
}

// settleGone marks done the owed actions of messages the complete listing
// no longer holds, forgets ledger entries of gone messages, and returns
// the actions still owed.
func (r *Runner) settleGone(ctx context.Context, mb store.Mailbox, list mailbox.Listing, pending []store.PendingAction) ([]store.PendingAction, error) {
	present := keysOf(list.Messages)
	listed := make(map[string]bool, len(present))
	for _, k := range present {
		listed[k] = true
	}
	var gone []string
	owed := pending[:0]
	for _, p := range pending {
		if listed[p.SourceKey] {
			owed = append(owed, p)
		} else {
			gone = append(gone, p.SourceKey)
		}
	}
	if err := r.DB.Tickets().MarkDone(ctx, mb.ID, gone); err != nil {
		return nil, err
	}
	if _, err := r.DB.Tickets().Forget(ctx, mb.ID, list.KeyPrefix, present); err != nil {
		return nil, err
	}
	return owed, nil
}

func (r *Runner) apply(ctx context.Context, mb store.Mailbox, sess mailbox.Session, keys []string) error {
	if len(keys) == 0 || mb.AfterFetch == store.ActionKeep {
		return nil
	}
	return r.applyAction(ctx, mb, sess, mb.AfterFetch, keys)
}

func (r *Runner) applyAction(ctx context.Context, mb store.Mailbox, sess mailbox.Session, action string, keys []string) error {
	done, err := sess.Apply(ctx, mailbox.Action(action), mb.MoveToFolder, keys)
	if err != nil {
		return fmt.Errorf("after_fetch %s (messages are stored; the action is retried next run): %w", action, err)
	}
	return r.DB.Tickets().MarkDone(ctx, mb.ID, done)
}

func keysOf(msgs []mailbox.Message) []string {
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		keys[i] = m.Key
	}
	return keys
}
