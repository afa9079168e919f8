package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// exit codes
const (
	exitOK     = 0
	exitFailed = 1 // a mailbox failed, or the command did
	exitUsage  = 2 // bad flags or settings
	exitCheck  = 3 // status and mailbox: the database could not be read
)

// Main is the program: main() builds one with the real environment, tests
// build one with buffers and a map of variables.
type Main struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader // the address pasted to fetcher authorize; nil reads nothing
	Getenv         func(string) string
	// Now is the clock of the commands that print times (status, mailbox
	// show); nil means time.Now (see Main.now).
	Now func() time.Time
}

const usage = `fetcher turns OAuth-protected mailboxes into tickets.

Usage:
  fetcher run [--once] [flags]   fetch every enabled mailbox, every --interval (default 10m), or once
  fetcher migrate [--down]       apply the database schema (or revert the newest step)
  fetcher demo [--keep-db]       run passes against built-in IMAP and token servers and print the tickets
  fetcher authorize MAILBOX      sign a mailbox's user in once and store its refresh token (--device, --admin-consent)
  fetcher secrets genkey|status|rotate  make a key, count or re-encrypt the stored secrets
  fetcher status [--format json]  every mailbox's health; exit status 1 when an enabled one
                                 is failing or needs re-authorization (for cron and monitoring)
  fetcher mailbox add|set|list|show|enable|disable|test  add a mailbox or change its
                                 settings, list them, show one, switch one on or off, or
                                 test its connection without fetching
  fetcher seed [--dry-run] FILE  create or update the mailboxes and ticket types of a
                                 reviewed YAML file (docs/provisioning.md)
  fetcher bench [flags]          measure the fetch pipeline on generated mailboxes, with
                                 optional latency, against a throwaway Postgres database
                                 (docs/performance.md)
  fetcher help                   show this text

Settings come from flags or the environment: DATABASE_URL (postgres://… or
sqlite:PATH; default sqlite:fetcher.db), FETCHER_INTERVAL, FETCHER_LOG_FORMAT,
FETCHER_LOG_LEVEL, FETCHER_PROGRESS (live progress per mailbox: auto on a terminal,
always or never), FETCHER_CA_FILE, FETCHER_MAILBOX_TIMEOUT, FETCHER_MAX_MESSAGE_BYTES,
FETCHER_CONCURRENCY, FETCHER_DIAL_TIMEOUT, FETCHER_COMMAND_TIMEOUT, FETCHER_AUTO_MIGRATE,
FETCHER_PROTOCOL_TRACE, FETCHER_ACK_LIMIT, FETCHER_ACK_WINDOW, FETCHER_LISTEN (metrics
and health endpoints of the long-running run), FETCHER_READY_MAX_AGE, and the limits
against hostile mail FETCHER_MAX_HEADER_BYTES,
FETCHER_MAX_HEADER_FIELDS, FETCHER_MAX_MIME_DEPTH, FETCHER_MAX_MIME_PARTS,
FETCHER_MAX_ATTACHMENTS and FETCHER_MAX_DECODED_BYTES (docs/configuration.md).
Secrets are encrypted with FETCHER_SECRET_KEY or FETCHER_SECRET_KEY_FILE (environment
only); FETCHER_ENV=production refuses to start without one.
Run "fetcher COMMAND --help" for a command's flags.
`

// Run runs the command named by args[0] and returns the exit status.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return exitUsage
	}
	cmds := map[string]func(context.Context, []string) error{
		"run":       m.runCmd,
		"migrate":   m.migrateCmd,
		"demo":      m.demoCmd,
		"authorize": m.authorizeCmd,
		"secrets":   m.secretsCmd,
		"status":    m.statusCmd,
		"mailbox":   m.mailboxCmd,
		"seed":      m.seedCmd,
		"bench":     m.benchCmd,
	}
	cmd, ok := cmds[args[0]]
	switch {
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(m.Stdout, usage)
		return exitOK
	case !ok:
		fmt.Fprintf(m.Stderr, "fetcher: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return m.exitCode(cmd(ctx, args[1:]))
}

// usageError is a mistake in flags or settings.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// errMailboxesFailed is returned by `run --once` when any mailbox failed;
// the failures themselves are already logged and on the mailbox rows.
var errMailboxesFailed = errors.New("some mailboxes failed; see the log above or mailboxes.last_error")

func (m *Main) exitCode(err error) int {
	var ue *usageError
	var ce *checkError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(m.Stderr, "fetcher: %v\n", err)
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(m.Stderr, "fetcher: %v\n", err)
		return exitCheck
	}
	fmt.Fprintf(m.Stderr, "fetcher: %v\n", err)
	return exitFailed
}

// config loads the defaults, the environment and the command's flags.
func (m *Main) config(name string, args []string, extra func(*flag.FlagSet, *Config)) (Config, error) {
	cfg := DefaultConfig()
	if err := cfg.fromEnv(m.Getenv); err != nil {
		return cfg, &usageError{err}
	}
	fs := flag.NewFlagSet("fetcher "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	cfg.registerFlags(fs)
	if extra != nil {
		extra(fs, &cfg)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, &usageError{err}
	}
	if fs.NArg() > 0 {
		return cfg, &usageError{fmt.Errorf("%s takes no arguments, got %q", name, fs.Args())}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &usageError{err}
	}
	return cfg, nil
}

func (m *Main) logger(cfg Config) *slog.Logger {
	return newLogger(m.Stderr, cfg.LogFormat, cfg.LogLevel)
}
