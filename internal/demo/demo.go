// Package demo runs the product end to end on one machine with nothing
// installed: a token endpoint that rotates refresh tokens like Microsoft's,
// an IMAP server that accepts XOAUTH2, an SMTP submission server that
// accepts XOAUTH2 tokens carrying SMTP.Send, all on 127.0.0.1, and a
// database.
// It adds a mailbox row with the same SQL an admin would write, delivers a
// few realistic messages, and runs passes of the real fetch code.
package demo

import (
	"context"
	"crypto/tls"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
)

//go:embed mail/*.eml
var mail embed.FS

const (
	user         = "support@demo.example"
	clientID     = "00000000-0000-0000-0000-00000000demo"
	clientSecret = "demo-client-secret"
	tenant       = "demo.onmicrosoft.com"
	replyFile    = "mail/04-reply.eml"
)

// Options configure a demo run.
type Options struct {
	// DatabaseURL is the database to use; "" makes a throwaway SQLite file.
	DatabaseURL string
	// KeepDB keeps the throwaway database and prints where it is.
	KeepDB bool
	Out    io.Writer
	Logger *slog.Logger
	// Keyring encrypts the secrets the demo stores; nil stores them in
	// plain text.
	Keyring *secret.Keyring
}

type env struct {
	opts   Options
	db     *store.DB
	tokens *oauthtest.Server
	imap   *mailboxtest.IMAPServer
	smtp   *mailboxtest.SMTPServer
	runner *fetch.Runner
	// keptDB is the throwaway database's URL when KeepDB asked to keep it.
	keptDB string
}

// Run performs the demo and prints what it did to opts.Out.
func Run(ctx context.Context, opts Options) error {
	e := &env{opts: opts}
	cleanup, err := e.start(ctx)
	defer cleanup()
	if err != nil {
		return err
	}
	return e.script(ctx)
}

func (e *env) start(ctx context.Context) (func(), error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	url, removeDB, err := e.databaseURL()
	if err != nil {
		return cleanup, err
	}
	closers = append(closers, removeDB)
	if e.db, err = store.Open(ctx, url); err != nil {
		return cleanup, err
	}
	closers = append(closers, func() { _ = e.db.Close() })
	e.db.SetKeyring(e.opts.Keyring)
	if _, err := e.db.Migrate(ctx); err != nil {
		return cleanup, err
	}
	e.tokens = oauthtest.NewServer(oauthtest.Options{})
	closers = append(closers, e.tokens.Close)
	e.tokens.AddClient(clientID, clientSecret)
	e.imap, err = mailboxtest.StartIMAP(mailboxtest.IMAPOptions{CheckToken: e.checkToken})
	if err != nil {
		return cleanup, err
	}
	closers = append(closers, func() { _ = e.imap.Close() })
	e.imap.AddUser(user, "")
	e.smtp, err = mailboxtest.StartSMTP(mailboxtest.SMTPOptions{
		Security: "starttls", Cert: e.imap.Cert, CheckToken: e.checkSendToken, NoInitialResponse: true,
	})
	if err != nil {
		return cleanup, err
	}
	closers = append(closers, func() { _ = e.smtp.Close() })
	e.runner = &fetch.Runner{
		DB:      e.db,
		Mailbox: &mailbox.Options{TLSConfig: &tls.Config{RootCAs: e.imap.Cert.Pool}},
		Logger:  e.opts.Logger,
	}
	return cleanup, nil
}

func (e *env) checkToken(u, tok string) bool {
	got, ok := e.tokens.AccessTokenUser(tok)
	return ok && got == u
}

// checkSendToken accepts, like Exchange, only a token carrying SMTP.Send.
func (e *env) checkSendToken(u, tok string) bool {
	at, ok := e.tokens.AccessToken(tok)
	return ok && at.User == u && slices.Contains(at.Scopes, "https://outlook.office.com/SMTP.Send")
}

func (e *env) databaseURL() (string, func(), error) {
	if e.opts.DatabaseURL != "" {
		return e.opts.DatabaseURL, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "fetcher-demo-")
	if err != nil {
		return "", func() {}, fmt.Errorf("make demo directory: %w", err)
	}
	path := filepath.Join(dir, "demo.db")
	if e.opts.KeepDB {
		e.keptDB = "sqlite:" + path
		return e.keptDB, func() {}, nil
	}
	return "sqlite:" + path, func() { _ = os.RemoveAll(dir) }, nil
}

func (e *env) deliver(names ...string) error {
	for _, name := range names {
		raw, err := fs.ReadFile(mail, name)
		if err != nil {
			return err
		}
		if _, err := e.imap.Deliver(user, "INBOX", raw); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) printf(format string, args ...any) {
	fmt.Fprintf(e.opts.Out, format, args...)
}
