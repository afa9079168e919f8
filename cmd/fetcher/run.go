package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/ops"
	"github.com/fetcherhq/fetcher/internal/store"
)

func (m *Main) runCmd(ctx context.Context, args []string) error {
	var once bool
	cfg, err := m.config("run", args, func(fs *flag.FlagSet, c *Config) {
		c.registerRunFlags(fs)
		fs.BoolVar(&once, "once", false, "make one pass and exit: status 1 when any mailbox failed (for cron and Kubernetes CronJobs)")
	})
	if err != nil {
		return err
	}
	defer m.cpuProfile(m.Getenv("FETCHER_CPU_PROFILE"))()
	if m.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: near it the garbage collector runs more often
		// instead of letting the heap double, which keeps a pass with a
		// 25 MB message well under 200 MB; it never fails an allocation
		// (docs/performance.md).
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
	out, view := m.runOutput(cfg)
	if view != nil {
		// Deferred first, so run last: every later line still passes
		// through it, and the terminal is left without a block.
		stop := view.run()
		defer stop()
	}
	log := newLoggerOn(out, isTerminal(m.Stderr), cfg.LogFormat, cfg.LogLevel)
	db, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	release, err := db.LockSingleWorker()
	if err != nil {
		return err
	}
	defer release()
	runner, err := newRunner(cfg, db, log, out)
	if err != nil {
		return &usageError{err}
	}
	if view != nil {
		runner.Progress = view
	}
	if once {
		return m.passOnce(ctx, runner)
	}
	// Mailboxes are due one Interval after their last success, each on
	// its own clock; passes come every tick to pick them up, and workers
	// sharing the database take turns.
	runner.Interval = cfg.Interval
	beat := &ops.Heartbeat{}
	stop, err := serveOps(cfg, db, runner, beat, log)
	if err != nil {
		return err
	}
	defer stop()
	return loop(ctx, runner, tick(cfg.Interval), beat, log)
}

// runOutput is where `run` writes its log: stderr, or when progress is
// wanted (see progressWanted) the progress display in front of it, which
// is returned too for the runner to report to.
func (m *Main) runOutput(cfg Config) (io.Writer, *progressView) {
	if !progressWanted(cfg.Progress, cfg.LogFormat, isTerminal(m.Stderr)) {
		return m.Stderr, nil
	}
	view := newProgressView(m.Stderr, time.Now)
	return view, view
}

// serveOps starts /metrics, /healthz and /readyz when --listen is set,
// with runner counting into the metrics; stop shuts them down, after the
// loop: they answer for as long as it runs.
func serveOps(cfg Config, db *store.DB, runner *fetch.Runner, beat *ops.Heartbeat, log *slog.Logger) (stop func(), err error) {
	if cfg.Listen == "" {
		return func() {}, nil
	}
	metrics := ops.NewMetrics(db)
	metrics.Heartbeat = beat
	// A mailbox's part of a pass is bounded by the mailbox timeout, once
	// for fetching and once for sending; longer silence is a hang.
	health := &ops.Health{DB: db, MaxAge: cfg.readyMaxAge(), Heartbeat: beat,
		MaxSilence: tick(cfg.Interval) + 2*cfg.MailboxTimeout + 2*time.Minute}
	srv, err := ops.Listen(cfg.Listen, ops.Handler(metrics, health), log)
	if err != nil {
		return nil, fmt.Errorf("cannot serve metrics and health endpoints (FETCHER_LISTEN / --listen): %w", err)
	}
	runner.Metrics = metrics
	log.Info("metrics and health endpoints listening", "addr", srv.Addr(), "ready_max_age", health.MaxAge)
	return func() {
		if err := srv.Shutdown(); err != nil {
			log.Warn("metrics and health endpoints did not stop cleanly", "error", err)
		}
	}, nil
}

// tick is how often the long-running worker looks for due mailboxes: a
// tenth of the interval, between 1 s and 1 min.
func tick(interval time.Duration) time.Duration {
	return min(max(interval/10, time.Second), time.Minute)
}

// openDatabase connects with the secret key configured and brings the
// schema up to date (or, with auto-migrate off, refuses to run on an old
// schema).
func openDatabase(ctx context.Context, cfg Config, log *slog.Logger) (*store.DB, error) {
	keys, err := cfg.Secrets.Keyring(log)
	if err != nil {
		return nil, &usageError{err}
	}
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	db.SetKeyring(keys)
	if keys.Enabled() {
		log.Info("secrets are encrypted at rest", "key_id", keys.PrimaryID())
	}
	log.Info("database opened", "dialect", db.Dialect(), "url", displayURL(cfg.DatabaseURL))
	if err := prepareSchema(ctx, db, cfg.AutoMigrate, log); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

// prepareSchema migrates, or with auto-migrate off refuses an old schema.
func prepareSchema(ctx context.Context, db *store.DB, migrate bool, log *slog.Logger) error {
	if migrate {
		applied, err := db.Migrate(ctx)
		if err == nil && len(applied) > 0 {
			log.Info("schema migrated", "applied", applied)
		}
		return err
	}
	pending, err := db.PendingMigrations(ctx)
	if err == nil && len(pending) > 0 {
		err = fmt.Errorf("the database schema is behind (%v pending): run `fetcher migrate`", pending)
	}
	return err
}

func displayURL(u string) string {
	if u == "" {
		return "sqlite:" + store.DefaultSQLitePath
	}
	return store.Redact(u)
}

func newRunner(cfg Config, db *store.DB, log *slog.Logger, trace io.Writer) (*fetch.Runner, error) {
	pool, err := cfg.rootCAs()
	if err != nil {
		return nil, err
	}
	mopts := mailbox.Options{DialTimeout: cfg.DialTimeout, CommandTimeout: cfg.CommandTimeout}
	if pool != nil {
		mopts.TLSConfig = &tls.Config{RootCAs: pool}
	}
	if cfg.ProtocolTrace {
		// Sessions run in parallel; the lock keeps their lines whole.
		mopts.DebugWriter = &lockedWriter{w: trace}
		log.Warn("protocol trace on: mail server conversations, messages included, go to the log (credentials redacted)")
	}
	return &fetch.Runner{
		DB: db, Logger: log, Mailbox: &mopts, MailboxTimeout: cfg.MailboxTimeout,
		MaxMessageBytes: cfg.MaxMessageBytes, Limits: cfg.Limits, Concurrency: cfg.Concurrency,
		AckLimit: ackLimit(cfg.AckLimit), AckWindow: cfg.AckWindow,
		OAuth: &oauth.Client{Logger: log},
	}, nil
}

func (m *Main) passOnce(ctx context.Context, runner *fetch.Runner) error {
	sum, err := runner.RunOnce(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, summaryLine(sum))
	if !sum.OK() {
		return errMailboxesFailed
	}
	return nil
}

func summaryLine(sum fetch.Summary) string {
	var fetched, created, appended, skipped int
	for _, r := range sum.Runs {
		fetched += r.MessagesFetched
		created += r.TicketsCreated
		appended += r.MessagesAppended
		skipped += r.MessagesSkipped
	}
	return fmt.Sprintf("%d mailboxes, %d failed: %d messages fetched, %d tickets created, %d replies threaded, %d skipped",
		sum.Mailboxes, len(sum.Failed), fetched, created, appended, skipped)
}

// loop runs a pass every tick, measured from the start of one pass to the
// start of the next, until ctx ends; each pass fetches the mailboxes that
// are due. A pass that fails as a whole (the database is down) is logged
// and tried again at the next tick.
func loop(ctx context.Context, runner *fetch.Runner, tick time.Duration, beat *ops.Heartbeat, log *slog.Logger) error {
	log.Info("fetcher started", "interval", runner.Interval, "tick", tick, "worker", runner.WorkerName())
	for {
		start := time.Now()
		beat.Beat(start)
		sum, err := runner.RunOnce(ctx)
		if ctx.Err() != nil {
			log.Info("fetcher stopped", "reason", context.Cause(ctx))
			return nil
		}
		switch {
		case err != nil:
			log.Error("pass failed", "error", err)
		case len(sum.Runs) == 0 && sum.OK():
			log.Debug("pass done: nothing due", "summary", summaryLine(sum))
		default:
			log.Info("pass done", "summary", summaryLine(sum), "duration_ms", time.Since(start).Milliseconds())
		}
		wait := time.NewTimer(max(tick-time.Since(start), 0))
		select {
		case <-ctx.Done():
			wait.Stop()
			log.Info("fetcher stopped", "reason", context.Cause(ctx))
			return nil
		case <-wait.C:
		}
	}
}

// lockedWriter serializes writes from concurrent sessions.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ackLimit maps FETCHER_ACK_LIMIT to Runner.AckLimit, where 0 means the
// default and a negative value no limit.
func ackLimit(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// DefaultMemoryLimit is the Go runtime's soft memory limit for run unless
// GOMEMLIMIT sets one.
const DefaultMemoryLimit = 128 << 20

// cpuProfile writes a CPU profile of the run to path, for `go tool pprof`
// (docs/performance.md), when path is set; the returned func ends it. A
// profile that cannot be started is reported and skipped: it must never
// stop the fetcher.
func (m *Main) cpuProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(m.Stderr, "FETCHER_CPU_PROFILE: %v; running without a profile\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
