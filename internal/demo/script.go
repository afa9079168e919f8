package demo

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"mime"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/fetcherhq/fetcher/internal/store"
)

// addMailboxSQL is what an admin runs to add a Microsoft 365 mailbox (see
// docs/microsoft365.md); only the host, port and authority differ, to point
// at the demo's servers.
const addMailboxSQL = `INSERT INTO mailboxes
  (name, protocol, host, port, use_ssl, username, oauth_provider, tenant_id,
   client_id, client_secret, refresh_token, authority_url,
   smtp_enabled, smtp_host, smtp_port, smtp_from_name)
VALUES (?, 'imap', ?, ?, true, ?, 'microsoft', ?, ?, ?, ?, ?, true, ?, ?, 'Demo Support')`

const addTicketTypeSQL = `INSERT INTO ticket_types (name, task, mailbox_id, admin_email, acknowledge)
VALUES (?, 'simple_storage', ?, 'helpdesk-lead@demo.example', true)`

func (e *env) script(ctx context.Context) error {
	name := fmt.Sprintf("Demo support inbox %s", time.Now().UTC().Format("20060102-150405.000"))
	mb, err := e.addMailbox(ctx, name)
	if err != nil {
		return err
	}
	e.printf("fetcher demo: IMAP server %s (XOAUTH2 over TLS), token endpoint %s, %s database\n\n",
		e.imap.Addr, e.tokens.URL(), e.db.Dialect())
	initial, err := fs.Glob(mail, "mail/0[1-3]*.eml")
	if err != nil {
		return err
	}
	if err := e.deliver(initial...); err != nil {
		return err
	}
	e.printf("1. Delivered %d messages to %s; mailbox %q added with SQL.\n", len(initial), user, mb.Name)
	if err := e.pass(ctx, "2. First pass"); err != nil {
		return err
	}
	if err := e.deliver(replyFile); err != nil {
		return err
	}
	e.printf("3. The customer replied to her ticket.\n")
	if err := e.pass(ctx, "4. Second pass"); err != nil {
		return err
	}
	if err := e.pass(ctx, "5. Third pass (nothing new)"); err != nil {
		return err
	}
	return e.report(ctx, mb)
}

func (e *env) addMailbox(ctx context.Context, name string) (store.Mailbox, error) {
	rt := e.tokens.IssueRefreshToken(clientID, user)
	err := e.db.Exec(ctx, addMailboxSQL, name, e.imap.Host(), e.imap.Port(), user,
		tenant, clientID, clientSecret, rt, e.tokens.URL(), e.smtp.Host(), e.smtp.Port())
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("add demo mailbox: %w", err)
	}
	mb, err := e.db.Mailboxes().GetByName(ctx, name)
	if err != nil {
		return mb, err
	}
	if err := e.db.Exec(ctx, addTicketTypeSQL, name+" tickets", mb.ID); err != nil {
		return mb, fmt.Errorf("add demo ticket type: %w", err)
	}
	return mb, nil
}

// pass runs the real fetch pass over the demo's mailbox only (a shared
// DATABASE_URL may hold real mailboxes, which the demo must not touch).
func (e *env) pass(ctx context.Context, title string) error {
	mb, err := e.demoMailbox(ctx)
	if err != nil {
		return err
	}
	run, err := e.runner.FetchMailbox(ctx, mb)
	if err != nil {
		return fmt.Errorf("%s failed: %w", title, err)
	}
	e.printf("%s: fetched %d, new tickets %d, replies threaded %d, skipped %d.\n",
		title, run.MessagesFetched, run.TicketsCreated, run.MessagesAppended, run.MessagesSkipped)
	return nil
}

func (e *env) demoMailbox(ctx context.Context) (store.Mailbox, error) {
	boxes, _, err := e.db.Mailboxes().ListEnabled(ctx)
	if err != nil {
		return store.Mailbox{}, err
	}
	for _, mb := range boxes {
		if mb.Host == e.imap.Host() && mb.Port == e.imap.Port() {
			return mb, nil
		}
	}
	return store.Mailbox{}, fmt.Errorf("demo mailbox not found")
}

func (e *env) report(ctx context.Context, mb store.Mailbox) error {
	tickets, err := e.db.Tickets().Summaries(ctx, mb.ID)
	if err != nil {
		return err
	}
	e.printf("\nTickets written to the database:\n")
	e.printf("  %-6s %-38s %-32s %-5s %s\n", "ID", "SUBJECT", "REQUESTER", "MSGS", "ATTACHMENTS")
	for _, t := range tickets {
		e.printf("  %-6d %-38s %-32s %-5d %d\n", t.ID, clip(t.Subject, 38), clip(t.RequesterEmail, 32), t.Messages, t.Attachments)
	}
	e.reportSent()
	after, err := e.db.Mailboxes().Get(ctx, mb.ID)
	if err != nil {
		return err
	}
	e.printf("\nMailbox status: %s. Token requests: %d (one to fetch, one to send with SMTP.Send; both are cached between passes; "+
		"the rotated refresh token was stored: %v).\n", after.Status, e.tokens.Requests(), after.RefreshToken != mb.RefreshToken)
	if e.opts.DatabaseURL != "" {
		// The demo's servers are gone when it exits: leave its rows for
		// inspection, but keep `fetcher run` from trying the dead mailbox.
		if err := e.db.Exec(ctx, "UPDATE mailboxes SET enabled = false WHERE id = ?", mb.ID); err != nil {
			return err
		}
		e.printf("The demo mailbox %q is left in the database, disabled.\n", mb.Name)
	}
	if e.keptDB != "" {
		e.printf("Database kept at %s: run `fetcher run --once --database %s` to fetch again.\n", e.keptDB, e.keptDB)
	}
	return nil
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// reportSent lists the mail the SMTP server accepted: the admin's
// notifications and the requesters' acknowledgements.
func (e *env) reportSent() {
	msgs := e.smtp.Messages()
	e.printf("\nMail sent through SMTP (XOAUTH2, STARTTLS), queued in the outbox with each ticket:\n")
	for _, m := range msgs {
		subject := ""
		if parsed, err := netmail.ReadMessage(bytes.NewReader(m.Data)); err == nil {
			subject, _ = new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
		}
		e.printf("  to %-32s %s\n", clip(strings.Join(m.To, ", "), 32), clip(subject, 60))
	}
}
