package fetch_test

import (
	"bytes"
	"context"
	"fmt"
	netmail "net/mail"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/notify"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

const (
	imapScope = "https://outlook.office.com/IMAP.AccessAsUser.All"
	sendScope = "https://outlook.office.com/SMTP.Send"
	adminAddr = "lead@example.com"
)

// sendBundle is a fetching test bundle plus an SMTP submission server
// that, like Exchange, takes only tokens carrying SMTP.Send and wants
// the XOAUTH2 response on its own line.
type sendBundle struct {
	*testBundle
	smtp    *mailboxtest.SMTPServer
	refuse  atomic.Bool // refuse every token, as a tenant with SMTP AUTH off
	mailbox int64
	user    string
}

func setupSend(t *testing.T, db *store.DB, opts mailboxtest.SMTPOptions, consent ...string) *sendBundle {
	t.Helper()
	b := &sendBundle{testBundle: setup(t, db), user: "support@example.com"}
	if opts.Security == "" {
		opts.Security = "starttls"
	}
	opts.NoInitialResponse = true
	opts.Cert = b.imap.Cert // one certificate, which the runner already trusts
	opts.CheckToken = func(user, tok string) bool {
		at, ok := b.tokens.AccessToken(tok)
		return ok && !b.refuse.Load() && at.User == user && slices.Contains(at.Scopes, sendScope)
	}
	srv, err := mailboxtest.StartSMTP(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	b.smtp = srv
	if len(consent) == 0 {
		consent = []string{imapScope, sendScope}
	}
	rt := b.tokens.IssueRefreshToken(clientID, b.user, consent...)
	b.mailbox = b.addMailbox(t, "Support", b.user, rt,
		"smtp_enabled", "true", "smtp_host", srv.Host(), "smtp_port", fmt.Sprint(srv.Port()),
		"smtp_security", opts.Security, "smtp_from_name", "Contoso Support")
	require.NoError(t, db.Exec(context.Background(),
		`INSERT INTO ticket_types (name, mailbox_id, admin_email, acknowledge) VALUES ('Support', ?, ?, true)`,
		b.mailbox, adminAddr))
	return b
}

func (b *sendBundle) pass(t *testing.T) {
	t.Helper()
	sum, err := b.runner.RunOnce(context.Background())
	require.NoError(t, err)
	require.True(t, sum.OK(), "the fetching must succeed whatever the sending did: %v", sum.Failed)
}

// outbox returns the mailbox's outbox rows, oldest first.
func (b *sendBundle) outbox(t *testing.T) []store.OutboxMessage {
	t.Helper()
	rows, err := b.db.Outbox().List(context.Background(), b.mailbox, 1000)
	require.NoError(t, err)
	slices.Reverse(rows)
	return rows
}

// sentTo returns the messages the SMTP server accepted for rcpt, parsed.
func (b *sendBundle) sentTo(t *testing.T, rcpt string) []*netmail.Message {
	t.Helper()
	var out []*netmail.Message
	for _, m := range b.smtp.Messages() {
		if slices.Contains(m.To, rcpt) {
			msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
			require.NoError(t, err)
			out = append(out, msg)
		}
	}
	return out
}

func ticketOf(t *testing.T, db *store.DB, messageID string) int64 {
	t.Helper()
	return count(t, db, "SELECT ticket_id FROM ticket_messages WHERE message_id = ?", messageID)
}

func TestNotificationsEndToEnd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupSend(t, db, mailboxtest.SMTPOptions{})
		b.deliver(t, b.user,
			mail(1, ""),
			mail(2, "List-Id: <news.example.org>\r\n"),
			"From: Out of office <c3@example.org>\r\nTo: support@example.com\r\nSubject: Automatic reply: holiday\r\n"+
				"Message-ID: <oof3@example.org>\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n")
		b.pass(t)

		t1, t2 := ticketOf(t, db, "<q1@example.org>"), ticketOf(t, db, "<q2@example.org>")
		admin := b.sentTo(t, adminAddr)
		require.Len(t, admin, 2, "one notification per new ticket; the auto-reply opened none")
		require.Equal(t, fmt.Sprintf("[#%d] New ticket: Question 1", t1), admin[0].Header.Get("Subject"))
		require.Equal(t, fmt.Sprintf("[#%d] New ticket: Question 2", t2), admin[1].Header.Get("Subject"))
		require.Equal(t, "<q1@example.org>", admin[0].Header.Get("References"))
		require.Equal(t, "auto-generated", admin[0].Header.Get("Auto-Submitted"))

		acks := b.sentTo(t, "c1@example.org")
		require.Len(t, acks, 1, "the requester is acknowledged once")
		ack := acks[0]
		subject := ack.Header.Get("Subject")
		id, ok := ticket.TicketTag(subject)
		require.True(t, ok, "the subject carries the ticket tag: %q", subject)
		require.Equal(t, t1, id)
		require.Equal(t, "<q1@example.org>", ack.Header.Get("In-Reply-To"))
		require.Contains(t, ack.Header.Get("References"), "<q1@example.org>")
		require.Equal(t, "auto-replied", ack.Header.Get("Auto-Submitted"))
		require.Equal(t, "All", ack.Header.Get("X-Auto-Response-Suppress"))
		from, err := netmail.ParseAddress(ack.Header.Get("From"))
		require.NoError(t, err)
		require.Equal(t, "Contoso Support", from.Name)
		require.Equal(t, b.user, from.Address)
		require.Empty(t, b.sentTo(t, "c2@example.org"), "mailing-list mail is never acknowledged")
		for _, m := range b.smtp.Messages() {
			require.Equal(t, b.user, m.From, "envelope sender")
		}
		for _, a := range b.smtp.AuthLog() {
			require.False(t, a.InitialResponse, "XOAUTH2 goes on its own line (RFC 4954 section 4)")
		}

		rows := b.outbox(t)
		byStatus := map[string]int{}
		for _, r := range rows {
			byStatus[r.Status]++
		}
		require.Equal(t, map[string]int{store.OutboxSent: 3, store.OutboxSuppressed: 1}, byStatus)
		for _, r := range rows {
			if r.Status == store.OutboxSuppressed {
				require.Equal(t, notify.KindAck, r.Kind)
				require.Contains(t, *r.LastError, "automatically")
			}
		}
		mb, err := db.Mailboxes().Get(context.Background(), b.mailbox)
		require.NoError(t, err)
		require.Equal(t, store.StatusActive, mb.Status)
		require.Empty(t, mb.SMTPLastError)
		require.False(t, mb.SMTPLastSuccessAt.IsZero())
		require.NotEmpty(t, mb.SMTPAccessToken, "the sending token is cached apart: its scopes differ")
		require.Equal(t, 2, b.tokens.Requests(), "one token to fetch, one to send")

		// The next pass sends nothing again, and reuses both tokens.
		b.pass(t)
		require.Len(t, b.smtp.Messages(), 3)
		require.Equal(t, 2, b.tokens.Requests())

		// The requester answers the acknowledgement from a mailer that
		// keeps only In-Reply-To: the reply joins the ticket, and (with
		// notify_replies off) nobody is mailed.
		reply := fmt.Sprintf("From: Customer 1 <c1@example.org>\r\nTo: support@example.com\r\nSubject: Re: %s\r\n"+
			"Message-ID: <r1@example.org>\r\nIn-Reply-To: %s\r\n\r\nThanks.\r\n", subject, ack.Header.Get("Message-ID"))
		b.deliver(t, b.user, reply)
		b.pass(t)
		require.Equal(t, t1, ticketOf(t, db, "<r1@example.org>"))
		require.Len(t, b.smtp.Messages(), 3)
	})
}

func TestOurMailComingBackStartsNoLoop(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupSend(t, db, mailboxtest.SMTPOptions{})
		require.NoError(t, db.Exec(context.Background(), "UPDATE ticket_types SET notify_replies = true"))
		b.deliver(t, b.user, mail(1, ""))
		b.pass(t)
		require.Len(t, b.smtp.Messages(), 2)
		queued := len(b.outbox(t))

		// The admin's address forwards into the mailbox, and the requester's
		// server bounces the acknowledgement: both come back.
		for _, m := range b.smtp.Messages() {
			b.deliver(t, b.user, string(m.Data))
		}
		b.deliver(t, b.user, "From: MAILER-DAEMON@example.org\r\nTo: support@example.com\r\nSubject: Undeliverable\r\n"+
			"Message-ID: <bounce1@example.org>\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n")
		for range 3 {
			b.pass(t)
		}
		require.Len(t, b.smtp.Messages(), 2, "nothing is sent about our own mail or a bounce")
		require.Len(t, b.outbox(t), queued, "not even a suppressed row: our own mail is no event")
		require.Equal(t, int64(4), count(t, db, "SELECT count(*) FROM ticket_messages"), "every message is stored")
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM tickets WHERE kind = 'mail'"),
			"the notifications come back into their ticket, not as new tickets")
	})
}

func TestAcknowledgementsAreRateLimited(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupSend(t, db, mailboxtest.SMTPOptions{})
		b.runner.AckLimit = 2
		for i := range 4 {
			b.deliver(t, b.user, fmt.Sprintf("From: Flood <flood@example.org>\r\nTo: support@example.com\r\n"+
				"Subject: Issue %d\r\nMessage-ID: <flood%d@example.org>\r\n\r\nHelp %d\r\n", i, i, i))
		}
		b.pass(t)
		require.Len(t, b.sentTo(t, "flood@example.org"), 2)
		require.Len(t, b.sentTo(t, adminAddr), 4, "the admin still learns of every ticket")
		require.Equal(t, int64(2), count(t, db, "SELECT count(*) FROM outbox WHERE status = 'suppressed'"))

		// The same requester in other letter case counts as the same; an
		// hour later the window has moved on.
		b.deliver(t, b.user, "From: FLOOD@Example.ORG\r\nSubject: Again\r\nMessage-ID: <flood-a@example.org>\r\n\r\nHi\r\n")
		b.pass(t)
		require.Empty(t, b.sentTo(t, "FLOOD@Example.ORG"))
		require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM outbox WHERE status = 'suppressed'"))
		require.NoError(t, db.Exec(context.Background(), "UPDATE outbox SET created_at = ?", time.Now().Add(-61*time.Minute)))
		b.deliver(t, b.user, "From: flood@example.org\r\nSubject: Later\r\nMessage-ID: <flood-b@example.org>\r\n\r\nHi\r\n")
		b.pass(t)
		require.Len(t, b.sentTo(t, "flood@example.org"), 3)
	})
}

func TestHeaderInjectionFromASubject(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupSend(t, db, mailboxtest.SMTPOptions{})
		b.deliver(t, b.user, "From: =?utf-8?q?Eve=0D=0ABcc:_victim@evil.test?= <eve@example.org>\r\n"+
			"To: support@example.com\r\nSubject: =?utf-8?q?Hello=0D=0ABcc:_victim@evil.test=0D=0A=0D=0Abody?=\r\n"+
			"Message-ID: <inject@example.org>\r\n\r\nHi\r\n")
		b.pass(t)
		msgs := b.smtp.Messages()
		require.Len(t, msgs, 2)
		for _, m := range msgs {
			require.Len(t, m.To, 1)
			require.NotContains(t, m.To[0], "evil.test")
			parsed, err := netmail.ReadMessage(bytes.NewReader(m.Data))
			require.NoError(t, err)
			require.Empty(t, parsed.Header.Get("Bcc"))
			for _, line := range strings.Split(string(m.Data), "\r\n") {
				require.False(t, strings.HasPrefix(strings.ToLower(line), "bcc:"), "injected field in %q", m.Data)
			}
		}
	})
}

func TestSendingFailureLeavesFetchingAlone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupSend(t, db, mailboxtest.SMTPOptions{})
		b.refuse.Store(true)
		b.deliver(t, b.user, mail(1, ""))
		b.pass(t)
		require.Empty(t, b.smtp.Messages())
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages"))
		mb, err := db.Mailboxes().Get(context.Background(), b.mailbox)
		require.NoError(t, err)
		require.Equal(t, store.StatusActive, mb.Status)
		require.Empty(t, mb.LastError)
		require.Contains(t, mb.SMTPLastError, "535")
		require.Contains(t, mb.SMTPLastError, "Do this:")
		for _, r := range b.outbox(t) {
			require.Equal(t, store.OutboxPending, r.Status)
			require.Equal(t, 1, r.Attempts)
			require.Contains(t, *r.LastError, "535")
			require.True(t, r.NextAttemptAt.After(time.Now()), "retried with backoff")
		}

		// Fixed: once the rows are due again they go out, once each.
		b.refuse.Store(false)
		require.NoError(t, db.Exec(context.Background(), "UPDATE outbox SET next_attempt_at = ?", time.Now().Add(-time.Second)))
		b.pass(t)
		require.Len(t, b.smtp.Messages(), 2)
		mb, err = db.Mailboxes().Get(context.Background(), b.mailbox)
		require.NoError(t, err)
		require.Empty(t, mb.SMTPLastError)
		b.pass(t)
		require.Len(t, b.smtp.Messages(), 2)
	})
}

func TestMissingSMTPConsentLeavesFetchingAlone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupSend(t, db, mailboxtest.SMTPOptions{}, imapScope) // consented before sending was turned on
		b.deliver(t, b.user, mail(1, ""))
		b.pass(t)
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages"))
		mb, err := db.Mailboxes().Get(context.Background(), b.mailbox)
		require.NoError(t, err)
		require.Equal(t, store.StatusActive, mb.Status)
		require.Contains(t, mb.SMTPLastError, "65001")
		require.Empty(t, b.smtp.Messages())
		require.NotEmpty(t, mb.RefreshToken, "a refused scope never costs the refresh token")
	})
}

func TestRefusedRecipientFailsOnlyItsRow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var deferred atomic.Int32
		b := setupSend(t, db, mailboxtest.SMTPOptions{
			OnRcpt: func(to string) *smtp.SMTPError {
				if to == adminAddr {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
				}
				return nil
			},
			OnData: func(m mailboxtest.SMTPMessage) *smtp.SMTPError {
				if deferred.Add(1) == 1 {
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
				}
				return nil
			},
		})
		b.deliver(t, b.user, mail(1, ""))
		b.pass(t)
		rows := b.outbox(t)
		require.Len(t, rows, 2)
		admin, ack := rows[0], rows[1]
		require.Equal(t, notify.KindNewTicket, admin.Kind)
		require.Equal(t, store.OutboxFailed, admin.Status, "an unknown recipient is final")
		require.Contains(t, *admin.LastError, "5.1.1")
		require.Contains(t, *admin.LastError, "admin_email")
		require.Equal(t, store.OutboxPending, ack.Status, "a 451 is retried")
		require.Contains(t, *ack.LastError, "451")
		mb, err := db.Mailboxes().Get(context.Background(), b.mailbox)
		require.NoError(t, err)
		require.NotEmpty(t, mb.SMTPLastError, "a refused message is on the mailbox too, not only on its row")
		require.Equal(t, store.StatusActive, mb.Status)

		require.NoError(t, db.Exec(context.Background(), "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending'", time.Now().Add(-time.Second)))
		b.pass(t)
		rows = b.outbox(t)
		require.Equal(t, store.OutboxFailed, rows[0].Status)
		require.Equal(t, store.OutboxSent, rows[1].Status)
		require.Equal(t, 2, rows[1].Attempts)
		require.Len(t, b.sentTo(t, "c1@example.org"), 1)
	})
}

func TestNotSendingWarns(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupSend(t, db, mailboxtest.SMTPOptions{})
		require.NoError(t, db.Exec(context.Background(), "UPDATE mailboxes SET smtp_enabled = false"))
		b.deliver(t, b.user, mail(1, ""))
		b.pass(t)
		require.Empty(t, b.outbox(t), "nothing is queued while sending is off")
		mb, err := db.Mailboxes().Get(context.Background(), b.mailbox)
		require.NoError(t, err)
		require.Contains(t, mb.Warning, "smtp_enabled")
		require.Contains(t, mb.Warning, `"Support"`)
	})
}

// TestShutdownWhileTheServerHoldsTheMessage stops the fetcher after the
// final dot, while the server is still deciding: the reply is awaited, so
// the row is marked sent and nothing goes out twice; the rows not yet
// tried are left as they were (a shutdown is no failed attempt).
func TestShutdownWhileTheServerHoldsTheMessage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var held atomic.Bool
		inData, release := make(chan struct{}), make(chan struct{})
		b := setupSend(t, db, mailboxtest.SMTPOptions{
			OnData: func(mailboxtest.SMTPMessage) *smtp.SMTPError {
				if held.CompareAndSwap(false, true) {
					close(inData)
					<-release
				}
				return nil
			},
		})
		b.deliver(t, b.user, mail(1, ""))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _, _ = b.runner.RunOnce(ctx); close(done) }()
		<-inData
		cancel() // SIGTERM
		time.Sleep(100 * time.Millisecond)
		close(release) // the server queues the whole message
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the pass did not end after the shutdown")
		}
		rows := b.outbox(t)
		require.Equal(t, store.OutboxSent, rows[0].Status, "the accepted message is recorded")
		require.Equal(t, store.OutboxPending, rows[1].Status)
		require.Zero(t, rows[1].Attempts, "a shutdown counts no attempt")
		require.Nil(t, rows[1].LastError)
		mb, err := db.Mailboxes().Get(context.Background(), b.mailbox)
		require.NoError(t, err)
		require.Empty(t, mb.SMTPLastError, "a shutdown is no sending failure")

		b.pass(t)
		requireEachMessageIDOnce(t, b.smtp.Messages(), 2)
	})
}

func requireEachMessageIDOnce(t *testing.T, msgs []mailboxtest.SMTPMessage, want int) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range msgs {
		parsed, err := netmail.ReadMessage(bytes.NewReader(m.Data))
		require.NoError(t, err)
		seen[parsed.Header.Get("Message-ID")]++
	}
	require.Len(t, seen, want)
	for id, n := range seen {
		require.Equal(t, 1, n, "%s sent %d times", id, n)
	}
}

// TestAcceptedButUnrecordedIsNotSentAgain makes the update that marks a
// notification sent fail once, after the server accepted it: the batch
// stops without counting attempts, and the next pass records the row
// instead of sending it again.
func TestAcceptedButUnrecordedIsNotSentAgain(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	b := setupSend(t, db, mailboxtest.SMTPOptions{})
	ctx := context.Background()
	// A sequence, unlike a table, keeps counting when the failing
	// statement rolls back.
	require.NoError(t, db.Exec(ctx, `CREATE SEQUENCE fail_once`))
	require.NoError(t, db.Exec(ctx, `CREATE FUNCTION fail_once_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'sent' AND nextval('fail_once') = 1 THEN
    RAISE EXCEPTION 'simulated failure' USING ERRCODE = '22000';
  END IF;
  RETURN NEW;
END $$`))
	require.NoError(t, db.Exec(ctx, `CREATE TRIGGER fail_once_tr BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION fail_once_fn()`))
	b.deliver(t, b.user, mail(1, ""))
	b.pass(t)
	rows := b.outbox(t)
	require.Equal(t, store.OutboxPending, rows[0].Status, "accepted, not recorded")
	require.Zero(t, rows[1].Attempts, "the row after it was not tried, and no attempt is counted")
	require.Nil(t, rows[1].LastError)

	b.pass(t)
	requireEachMessageIDOnce(t, b.smtp.Messages(), 2)
	for _, r := range b.outbox(t) {
		require.Equal(t, store.OutboxSent, r.Status, "row %d: %v\n%s", r.ID, deref(r.LastError), b.logs)
	}
}

// TestExactBytesSent rebuilds an acknowledgement from its outbox row with
// the Date the server received and compares it with what went over the
// wire, byte for byte.
func TestExactBytesSent(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	b := setupSend(t, db, mailboxtest.SMTPOptions{})
	b.deliver(t, b.user, mail(1, ""))
	b.pass(t)
	rows := b.outbox(t)
	require.Len(t, rows, 2)
	for _, m := range b.smtp.Messages() {
		parsed, err := netmail.ReadMessage(bytes.NewReader(m.Data))
		require.NoError(t, err)
		date, err := parsed.Header.Date()
		require.NoError(t, err)
		var row store.OutboxMessage
		for _, r := range rows {
			if r.MessageID == parsed.Header.Get("Message-ID") {
				row = r
			}
		}
		require.NotZero(t, row.ID)
		want, err := notify.Build(notify.Outgoing{
			Kind: row.Kind, TicketID: *row.TicketID,
			From: netmail.Address{Name: "Contoso Support", Address: b.user},
			To:   row.Recipient, Subject: row.Subject, Body: row.BodyText, MessageID: row.MessageID,
			InReplyTo: deref(row.InReplyTo), References: deref(row.ReferencesHeader), Date: date,
		})
		require.NoError(t, err)
		require.Equal(t, string(want), string(m.Data))
		require.Equal(t, []string{row.Recipient}, m.To)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestLateAcknowledgementIsGivenUp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setupSend(t, db, mailboxtest.SMTPOptions{})
		b.refuse.Store(true) // the mailbox cannot send for a day
		b.deliver(t, b.user, mail(1, ""))
		b.pass(t)
		b.refuse.Store(false)
		require.NoError(t, db.Exec(context.Background(), "UPDATE outbox SET created_at = ?, next_attempt_at = ?",
			time.Now().Add(-25*time.Hour), time.Now().Add(-time.Second)))
		b.pass(t)
		require.Len(t, b.sentTo(t, adminAddr), 1, "the admin still learns of the ticket")
		require.Empty(t, b.sentTo(t, "c1@example.org"), "an acknowledgement a day late is not sent")
		rows := b.outbox(t)
		require.Equal(t, store.OutboxFailed, rows[1].Status)
		require.Contains(t, *rows[1].LastError, "24h")
	})
}

// TestSendAsDeniedAtDataStopsTheBatch: Exchange refuses a From the
// mailbox may not use only after the final dot. That is the account's
// problem, not the message's: the batch stops, every row waits (none is
// given up), and the mailbox says what to do.
func TestSendAsDeniedAtDataStopsTheBatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var datas atomic.Int32
		b := setupSend(t, db, mailboxtest.SMTPOptions{
			OnData: func(mailboxtest.SMTPMessage) *smtp.SMTPError {
				datas.Add(1)
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 2, 0},
					Message: "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception"}
			},
		})
		b.deliver(t, b.user, mail(1, ""), mail(2, ""))
		b.pass(t)
		require.Equal(t, int32(1), datas.Load(), "the batch stops at the first refusal")
		rows := b.outbox(t)
		require.Len(t, rows, 4)
		for _, r := range rows {
			require.Equal(t, store.OutboxPending, r.Status, "waits for the admin's fix")
			require.Equal(t, 1, r.Attempts)
		}
		mb, err := db.Mailboxes().Get(context.Background(), b.mailbox)
		require.NoError(t, err)
		require.Contains(t, mb.SMTPLastError, "smtp_from")
	})
}
