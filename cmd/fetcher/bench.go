package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fetcherhq/fetcher/internal/bench"
	"github.com/fetcherhq/fetcher/internal/store"
)

const benchUsage = `Usage: fetcher bench [flags]

Measures the real fetch pipeline. It generates --mailboxes mailboxes of
--messages messages each on a local mail server (the in-process one, or a
real Dovecot), behind a proxy that adds --delay to every round trip and
counts the commands the client sends; creates a fresh Postgres database
(fetcher_bench_<random>) on the server of --database-url with the mailbox
rows; and runs this binary as "fetcher run --once" in a child process for
each of --passes passes, timing it and reading its peak memory. The first
pass fetches everything, the later ones find nothing new.

It prints a table per pass (messages and MB stored, seconds, messages/s,
MB/s, peak RSS of the fetcher, commands sent, logins, token requests) and
fails with exit status 1 when a delivered message was not stored exactly
once. --fetchmail also runs Debian's fetchmail over the same mail
(--server dovecot). See docs/performance.md.

Flags:
`

// benchOptions are the flags of `fetcher bench`.
type benchOptions struct {
	bench.Options
	size, largeSize string
	seed            uint64
	format          string
	timeout         time.Duration
}

func (o *benchOptions) register(fs *flag.FlagSet, defaultDB string) {
	fs.StringVar(&o.Server, "server", bench.ServerMemory, "mail server: memory (in-process) or dovecot (a real Dovecot, from Debian's dovecot-imapd and dovecot-pop3d)")
	fs.StringVar(&o.Protocol, "protocol", bench.ProtocolIMAP, "imap or pop3")
	fs.IntVar(&o.Mailboxes, "mailboxes", bench.DefaultMailboxes, "how many mailboxes")
	fs.IntVar(&o.Messages, "messages", bench.DefaultMessages, "messages in each mailbox")
	fs.StringVar(&o.size, "size", bench.SizeRealistic, "message size: realistic (a seeded mix, mostly 5 to 50 KB, median about 20 KB) or a fixed size such as 20KB (1KB = 1024 bytes)")
	fs.Uint64Var(&o.seed, "seed", bench.DefaultSeed, "seed of the generated messages: the same seed makes the same bytes")
	fs.IntVar(&o.Large, "large", 0, "add this many large messages (a base64 attachment of about --large-size), spread over the mailboxes")
	fs.StringVar(&o.largeSize, "large-size", bench.FormatSize(bench.DefaultLargeSize), "size of each --large message, such as 8MB or 25MB")
	fs.DurationVar(&o.Delay, "delay", 0, "network latency added to every round trip to the mail server, such as 50ms (half each way; not a bandwidth limit)")
	fs.IntVar(&o.Concurrency, "concurrency", 0, "FETCHER_CONCURRENCY for the fetcher; 0 leaves it unset: the fetcher's default")
	fs.IntVar(&o.Passes, "passes", bench.DefaultPasses, "how many times to run fetcher run --once")
	fs.StringVar(&o.DatabaseURL, "database-url", defaultDB, "a Postgres server to create the benchmark's database on (env TEST_DATABASE_URL or DATABASE_URL)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the database and the directory of logs (the fetcher's JSON log of each pass, fetchmail's files) and print where they are")
	fs.StringVar(&o.format, "format", "table", "output: table, or json for scripts")
	fs.BoolVar(&o.Fetchmail, "fetchmail", false, "after the passes, run fetchmail (/usr/bin/fetchmail) over the same mail through the same proxy, and compare (needs --server dovecot)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop the benchmark after this long, such as 5m (0: no limit); the database is still dropped")
}

// defaultBenchDB is the Postgres server of the tests, or of the fetcher.
func (m *Main) defaultBenchDB() string {
	for _, v := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if u := m.Getenv(v); u != "" {
			return u
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func (m *Main) benchCmd(ctx context.Context, args []string) error {
	var o benchOptions
	fs := flag.NewFlagSet("fetcher bench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	o.register(fs, m.defaultBenchDB())
	// The help text must not show a password the environment holds.
	fs.Lookup("database-url").DefValue = store.Redact(m.defaultBenchDB())
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Errorf("bench takes no arguments, got %q", fs.Args())}
	}
	if err := o.resolve(); err != nil {
		return &usageError{err}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the fetcher binary to run: %w", err)
	}
	o.Executable, o.Env, o.Progress = exe, os.Environ(), m.Stderr
	if err := o.Validate(); err != nil {
		return &usageError{err}
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("--timeout %s reached", o.timeout))
		defer cancel()
	}
	report, runErr := bench.Run(ctx, o.Options)
	if report == nil {
		return runErr
	}
	// What was measured is printed even when the run stopped early.
	if o.format == "json" {
		err = report.WriteJSON(m.Stdout)
	} else {
		err = report.WriteTable(m.Stdout)
	}
	if runErr != nil || err != nil {
		return errors.Join(runErr, err)
	}
	if !report.OK() {
		return errors.New("bench failed: see the result line")
	}
	return nil
}

// resolve reads the flags that need parsing.
func (o *benchOptions) resolve() error {
	o.Seed = o.seed
	if o.format != "table" && o.format != "json" {
		return fmt.Errorf("--format %q: use table or json", o.format)
	}
	if o.size != bench.SizeRealistic {
		n, err := bench.ParseSize(o.size)
		if err != nil {
			return fmt.Errorf("--size: %w; or realistic", err)
		}
		o.Size = n
	}
	n, err := bench.ParseSize(o.largeSize)
	if err != nil {
		return fmt.Errorf("--large-size: %w", err)
	}
	o.LargeSize = n
	return nil
}
