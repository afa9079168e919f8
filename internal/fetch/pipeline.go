package fetch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

// Limits of the pipeline that stores a mailbox's small messages.
const (
	// streamLimit is the largest message fetched in a batch; larger ones
	// are fetched one at a time, alone in memory (see storeLarge).
	streamLimit = 1 << 20
	// chunkBytes and chunkMessages bound one batched fetch (one UID FETCH,
	// one pipeline of RETRs). Between two batches the after-fetch action
	// of the messages stored so far is sent, in one command.
	chunkBytes    = 8 << 20
	chunkMessages = store.MaxBatch
	// batchBytes bounds the raw bytes saved in one transaction.
	batchBytes = 4 << 20
	// DefaultMemoryBudget bounds the bytes of fetched messages a worker
	// holds at once, over all its mailboxes: fetching waits while the
	// database catches up, so memory does not grow with the mail.
	DefaultMemoryBudget = 8 << 20
)

// item is a fetched message on its way to the database.
type item struct {
	msg  mailbox.Message
	raw  []byte
	gone error // the message vanished: nothing to store
	held int64 // bytes of the memory budget it holds
	// parsed is set once done is closed.
	parsed *ticket.Message
	done   chan struct{}
}

// pipeline stores the messages one reader hands it: parsers decode them
// in parallel, and one writer saves them in order, in batches, each in
// one transaction. The reader owns the mail session and sends the
// after-fetch actions of what the writer committed.
type pipeline struct {
	r   *Runner
	mb  store.Mailbox
	run *store.Run
	m   *meter
	ctx context.Context

	parse   chan *item
	order   chan *item
	pending sync.WaitGroup // items added but not yet settled by the writer
	workers sync.WaitGroup

	mu        sync.Mutex
	committed []string // keys stored and owing their after-fetch action
	err       error    // the writer's failure: nothing after it is stored
}

func (r *Runner) startPipeline(ctx context.Context, mb store.Mailbox, run *store.Run, m *meter) *pipeline {
	p := &pipeline{
		r: r, mb: mb, run: run, m: m, ctx: ctx,
		parse: make(chan *item, chunkMessages), order: make(chan *item, chunkMessages),
	}
	// A core is left to the rest: the writer, with Postgres, is what
	// bounds a pass (ADR 0016), and two CPU-bound parsers on two cores
	// kept it and the reader waiting to be scheduled after each round
	// trip. Measured on 2 CPUs: 1,270-1,330 messages/s with two parsers,
	// 1,370-1,620 with one.
	parsers := max(1, runtime.GOMAXPROCS(0)-1)
	p.workers.Add(parsers + 1)
	for range parsers {
		go p.parser()
	}
	go p.writer()
	return p
}

// add queues a fetched message (or, with gone set, one that vanished) for
// storing, once the memory budget has room for it. It fails when the
// writer has failed: what follows cannot be stored in order.
func (p *pipeline) add(msg mailbox.Message, raw []byte, gone error) error {
	if err := p.failed(); err != nil {
		return err
	}
	held, err := p.r.memory().acquire(p.ctx, int64(len(raw)))
	if err != nil {
		return err
	}
	it := &item{msg: msg, raw: raw, gone: gone, held: held, done: make(chan struct{})}
	p.pending.Add(1)
	p.parse <- it
	p.order <- it
	return nil
}

func (p *pipeline) parser() {
	defer p.workers.Done()
	for it := range p.parse {
		if it.gone == nil {
			it.parsed = p.parseGuarded(it)
		}
		close(it.done)
	}
}

// parseGuarded parses one message. A panic (a bug, or a library tripping
// over the message) fails the mailbox's pass, as one in the mailbox's own
// goroutine would (see fetchGuarded), instead of the whole worker; the
// message is fetched again next pass.
func (p *pipeline) parseGuarded(it *item) (m *ticket.Message) {
	defer func() {
		if v := recover(); v != nil {
			p.fail(p.panicked("parsing a message", v))
			m = &ticket.Message{}
		}
	}()
	return ticket.ParseWith(it.raw, p.r.Limits)
}

// panicked logs a panic of the pipeline and returns the mailbox's error
// for it.
func (p *pipeline) panicked(doing string, v any) error {
	what := describePanic(v)
	// The stack holds function names and raw argument words, never the
	// bytes of a string, so it cannot leak a token or a message.
	p.r.mailboxLog(p.mb).Error("bug: "+doing+" panicked", "panic", what, "stack", string(debug.Stack()))
	return fmt.Errorf("internal error while %s (%s); the messages stored before it are kept and the mailbox is tried again later. Please report it with the log line \"bug: %s panicked\"", doing, what, doing)
}

// writer saves the items in order: those waiting when a transaction
// starts go in it, up to store.MaxBatch messages or batchBytes.
func (p *pipeline) writer() {
	defer p.workers.Done()
	for it := range p.order {
		batch := p.gather(it)
		p.saveGuarded(batch)
		for _, it := range batch {
			p.r.memory().release(it.held)
			p.pending.Done()
		}
	}
}

func (p *pipeline) gather(first *item) []*item {
	batch, size := []*item{first}, len(first.raw)
	for len(batch) < store.MaxBatch && size < batchBytes {
		select {
		case it, ok := <-p.order:
			if !ok {
				return batch
			}
			batch, size = append(batch, it), size+len(it.raw)
		default:
			return batch
		}
	}
	return batch
}

// saveGuarded saves a batch; a panic fails the mailbox's pass (see
// parseGuarded), and the batch, rolled back, is fetched again next pass.
func (p *pipeline) saveGuarded(batch []*item) {
	defer func() {
		if v := recover(); v != nil {
			p.fail(p.panicked("storing messages", v))
		}
	}()
	p.save(batch)
}

// save stores a batch, or, once the writer has failed, drops it.
func (p *pipeline) save(batch []*item) {
	if p.failed() != nil {
		return
	}
	var fs []store.Fetched
	var saved []*item
	for _, it := range batch {
		<-it.done
		if it.gone != nil {
			p.vanished(it)
			continue
		}
		f := fetched(p.mb, it.msg, it.raw, it.parsed)
		f.Notify = p.r.notifying(p.mb)
		fs, saved = append(fs, f), append(saved, it)
	}
	out, err := p.r.DB.Tickets().SaveBatch(p.ctx, fs)
	if errors.Is(err, store.ErrBatchRefused) {
		out, err = p.saveEach(fs)
	}
	for i, s := range out {
		p.stored(saved[i].msg, s)
	}
	if err != nil {
		p.fail(err)
	}
}

// saveEach saves the messages of a refused batch one at a time, so that
// the one the database refuses is kept as raw bytes (see Runner.save) and
// a key stored meanwhile by another worker is found known. It returns
// what it saved before any failure.
func (p *pipeline) saveEach(fs []store.Fetched) ([]store.Saved, error) {
	var out []store.Saved
	for _, f := range fs {
		s, err := p.r.save(p.ctx, p.mb, f)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *pipeline) vanished(it *item) {
	p.run.MessagesSkipped++
	p.m.handled(p.run)
	p.r.mailboxLog(p.mb).Warn("message vanished from the server before it was fetched (moved or deleted by another client)",
		"source_key", it.msg.Key)
}

func (p *pipeline) stored(msg mailbox.Message, s store.Saved) {
	p.run.Count(s.Outcome)
	p.m.handled(p.run)
	p.mu.Lock()
	p.committed = append(p.committed, msg.Key)
	p.mu.Unlock()
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

func (p *pipeline) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// take returns the keys committed since the last take.
func (p *pipeline) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := p.committed
	p.committed = nil
	return keys
}

// wait returns once every item added is stored or dropped, with the
// writer's failure if any.
func (p *pipeline) wait() error {
	p.pending.Wait()
	return p.failed()
}

// close stops the workers once everything added is settled.
func (p *pipeline) close() error {
	err := p.wait()
	close(p.parse)
	close(p.order)
	p.workers.Wait()
	return err
}

// budget bounds the bytes held by fetched messages not yet stored. It is
// first come, first served: a large message waiting for its share is not
// overtaken by a stream of small ones, which would otherwise keep a part
// of the budget held for as long as any mailbox has a backlog.
type budget struct {
	mu      sync.Mutex
	size    int64
	free    int64
	waiters []*waiter
}

// waiter is an acquire waiting its turn; ready is closed once it has n.
type waiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(size int64) *budget {
	return &budget{size: size, free: size}
}

// acquire takes n bytes, waiting its turn until they are free or ctx ends.
// A message larger than the whole budget takes all of it. It returns what
// it took, for release. No holder waits for another acquire to release
// (the pipeline's writer frees what its mailbox holds without acquiring
// anything), so a turn always comes.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.size)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return n, nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted as ctx ended
		b.free += n
	default:
		b.waiters = slices.DeleteFunc(b.waiters, func(o *waiter) bool { return o == w })
	}
	b.grant()
	return 0, ctx.Err()
}

// grant hands free bytes to the waiters in turn. b.mu is held.
func (b *budget) grant() {
	for len(b.waiters) > 0 && b.free >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.free -= w.n
		close(w.ready)
	}
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	b.grant()
	b.mu.Unlock()
}
