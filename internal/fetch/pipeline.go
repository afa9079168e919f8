package fetch

import (
	"context"
	"errors"
	"runtime"
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
	parsers := max(1, runtime.GOMAXPROCS(0))
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
			it.parsed = ticket.ParseWith(it.raw, p.r.Limits)
		}
		close(it.done)
	}
}

// writer saves the items in order: those waiting when a transaction
// starts go in it, up to store.MaxBatch messages or batchBytes.
func (p *pipeline) writer() {
	defer p.workers.Done()
	for it := range p.order {
		batch := p.gather(it)
		p.save(batch)
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

// budget bounds the bytes held by fetched messages not yet stored.
type budget struct {
	mu   sync.Mutex
	size int64
	free int64
	// freed is closed, and replaced, on every release.
	freed chan struct{}
}

func newBudget(size int64) *budget {
	return &budget{size: size, free: size, freed: make(chan struct{})}
}

// acquire takes n bytes, waiting until they are free or ctx ends. A
// message larger than the whole budget takes all of it. It returns what
// it took, for release.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.size)
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return n, nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
