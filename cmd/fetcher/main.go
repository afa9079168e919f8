// Command fetcher turns OAuth-protected mailboxes into ticket rows.
//
//	fetcher run [--once]   fetch every enabled mailbox (every 10 minutes, or once)
//	fetcher migrate        apply the database schema
//	fetcher demo           run one pass against built-in servers and print the tickets
//	fetcher authorize MAILBOX  sign a mailbox's user in once and store its refresh token
//	fetcher status         each mailbox's state, in a table or JSON
//	fetcher mailbox list|show|enable|disable|test  look at and probe mailboxes
//	fetcher secrets genkey|status|rotate  the key that encrypts stored secrets
//
// See README.md and docs/ for setup.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal stops the fetcher gracefully (no new mailbox; the
	// message in flight is abandoned, to be fetched again; leases are
	// released). A second one kills it at once, as an operator pressing
	// Ctrl-C twice expects.
	go func() {
		<-ctx.Done()
		stop()
	}()
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}
	os.Exit(m.Run(ctx, os.Args[1:]))
}
