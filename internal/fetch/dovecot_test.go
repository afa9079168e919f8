package fetch_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// startDovecot starts a real Dovecot whose XOAUTH2 logins are checked
// against b's token endpoint, and points b's runner at its certificate.
func startDovecot(t *testing.T, b *testBundle) *mailboxtest.Dovecot {
	t.Helper()
	d := mailboxtest.DovecotForTest(t, b.tokens.AccessTokenUser, map[string]string{"pw@example.com": "correct horse"})
	b.runner.Mailbox.TLSConfig = &tls.Config{RootCAs: d.Cert.Pool}
	return d
}

func TestDovecotIMAPEndToEnd(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	b := setup(t, db)
	d := startDovecot(t, b)
	ctx := context.Background()
	const user = "helpdesk@example.com"
	for i := 1; i <= 3; i++ {
		require.NoError(t, d.Deliver(user, []byte(mail(i, ""))))
	}
	rt := b.tokens.IssueRefreshToken(clientID, user)
	id := b.addMailbox(t, "Dovecot", user, rt)
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET port = ? WHERE id = ?", d.Ports["imaps"], id))
	// The same mailbox over STARTTLS on port 143 must read the same folder
	// without doubling anything.
	sum, err := b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, sum.OK(), "RunOnce() failed: %v\n%s", sum.Failed, d.Log())
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET port = ?, use_ssl = false, starttls = true WHERE id = ?", d.Ports["imap"], id))
	require.NoError(t, d.Deliver(user, []byte(mail(4, ""))))
	sum, err = b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, sum.OK(), "RunOnce() over STARTTLS failed: %v\n%s", sum.Failed, d.Log())

	require.Equal(t, int64(4), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
	var raw []byte
	require.NoError(t, db.QueryRow(ctx, "SELECT raw FROM ticket_messages WHERE message_id = '<q2@example.org>'", nil, &raw))
	require.Equal(t, mail(2, ""), string(raw), "raw must be the delivered bytes")
}

func TestDovecotRefusedToken(t *testing.T) {
	t.Parallel()
	b := setup(t, storetest.SQLite(t))
	d := startDovecot(t, b)
	// A token Dovecot's introspection rejects: the server sends the
	// XOAUTH2 error challenge, our client answers it, and the refusal comes
	// back as an AuthError with the server's words.
	_, err := mailbox.Open(context.Background(), mailbox.Account{
		Protocol: "imap", Host: "127.0.0.1", Port: d.Ports["imaps"], Security: mailbox.TLS,
		Username: "helpdesk@example.com", AccessToken: "revoked-token",
	}, b.runner.Mailbox)
	require.Error(t, err)
	require.True(t, mailbox.IsAuth(err), "IsAuth(%v) = false\n%s", err, d.Log())
	require.NotContains(t, err.Error(), "revoked-token")
}

func TestDovecotPasswordLogin(t *testing.T) {
	t.Parallel()
	b := setup(t, storetest.SQLite(t))
	d := startDovecot(t, b)
	require.NoError(t, d.Deliver("pw@example.com", []byte(mail(1, ""))))
	ctx := context.Background()
	require.NoError(t, b.db.Exec(ctx, `INSERT INTO mailboxes (name, protocol, host, port, username, auth_type, password, after_fetch)
		VALUES ('pw', 'imap', '127.0.0.1', ?, 'pw@example.com', 'password', 'correct horse', 'delete')`, d.Ports["imaps"]))
	sum, err := b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, sum.OK(), "RunOnce() failed: %v\n%s", sum.Failed, d.Log())
	require.Equal(t, 1, sum.Runs[0].TicketsCreated)
	mb, err := b.db.Mailboxes().GetByName(ctx, "pw")
	require.NoError(t, err)
	require.Equal(t, store.StatusActive, mb.Status)
}

// popMail has the shapes a POP3 client gets wrong: lines starting with a
// dot (dot-stuffed on the wire, RFC 1939 section 3), a lone dot, and a
// 10,000-character line.
func popMail(n int) string {
	return fmt.Sprintf("From: c%d@example.org\r\nSubject: pop %d\r\nMessage-ID: <pop%d@example.org>\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\n%s\r\nend\r\n",
		n, n, n, strings.Repeat("x", 10000))
}

func TestDovecotPOP3EndToEnd(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"keep", "delete"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			db := storetest.Postgres(t)
			b := setup(t, db)
			d := startDovecot(t, b)
			ctx := context.Background()
			const user = "pop@example.com"
			for i := 1; i <= 3; i++ {
				require.NoError(t, d.Deliver(user, []byte(popMail(i))))
			}
			id := b.addMailbox(t, "POP "+action, user, b.tokens.IssueRefreshToken(clientID, user), "after_fetch", action)
			require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET protocol = 'pop3', port = ? WHERE id = ?", d.Ports["pop3s"], id))
			for pass := range 2 {
				sum, err := b.runner.RunOnce(ctx)
				require.NoError(t, err)
				require.True(t, sum.OK(), "pass %d: %v\n%s", pass, sum.Failed, d.Log())
			}
			require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
			var raw []byte
			require.NoError(t, db.QueryRow(ctx, "SELECT raw FROM ticket_messages WHERE message_id = '<pop2@example.org>'", nil, &raw))
			require.Equal(t, popMail(2), string(raw), "POP3 must return the delivered bytes exactly")
			left := 0
			if action == "keep" {
				left = 3
			}
			require.Equal(t, left, d.MaildirCount(user), "messages left on the server")
		})
	}
}

// TestDovecotFetchAndSend fetches from a real Dovecot over IMAP and sends
// the notifications through Dovecot's submission server (STARTTLS on the
// submission port, XOAUTH2 for the token mailbox and PLAIN for the
// password one), which relays them to an in-process server.
func TestDovecotFetchAndSend(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	b := setup(t, db)
	const pwUser, pw = "pw@example.com", "correct horse"
	d, relay := mailboxtest.DovecotSubmissionForTest(t, b.tokens.AccessTokenUser, map[string]string{pwUser: pw}, mailboxtest.SMTPOptions{})
	b.runner.Mailbox.TLSConfig = &tls.Config{RootCAs: d.Cert.Pool}
	ctx := context.Background()
	const user = "helpdesk@example.com"
	rt := b.tokens.IssueRefreshToken(clientID, user)
	smtpCols := fmt.Sprintf(", smtp_enabled = true, smtp_host = '127.0.0.1', smtp_port = %d, smtp_security = 'starttls'", d.Ports["submission"])
	token := b.addMailbox(t, "Token", user, rt)
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET port = ?"+smtpCols+" WHERE id = ?", d.Ports["imaps"], token))
	password := b.addMailbox(t, "Password", pwUser, "")
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET port = ?, auth_type = 'password', password = ?, oauth_provider = NULL"+smtpCols+" WHERE id = ?",
		d.Ports["imaps"], pw, password))
	for _, mb := range []int64{token, password} {
		require.NoError(t, db.Exec(ctx, "INSERT INTO ticket_types (name, mailbox_id, admin_email, acknowledge) VALUES (?, ?, 'lead@example.com', true)",
			fmt.Sprint("type ", mb), mb))
	}
	require.NoError(t, d.Deliver(user, []byte(mail(1, ""))))
	require.NoError(t, d.Deliver(pwUser, []byte(mail(2, ""))))

	sum, err := b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, sum.OK(), "RunOnce() failed: %v\n%s", sum.Failed, d.Log())
	require.Equal(t, int64(4), count(t, db, "SELECT count(*) FROM outbox WHERE status = 'sent'"),
		"%s\n%s", strings.Join(mailboxErrors(t, db), "\n"), d.Log())
	senders := map[string][]string{} // recipient: envelope senders
	for _, m := range relay.Messages() {
		for _, to := range m.To {
			senders[to] = append(senders[to], m.From)
		}
	}
	require.ElementsMatch(t, []string{user, pwUser}, senders["lead@example.com"], "each mailbox tells the admin")
	require.Equal(t, []string{user}, senders["c1@example.org"], "acknowledged by the mailbox it wrote to")
	require.Equal(t, []string{pwUser}, senders["c2@example.org"])
}

func mailboxErrors(t *testing.T, db *store.DB) []string {
	t.Helper()
	boxes, err := db.Mailboxes().List(context.Background())
	require.NoError(t, err)
	var out []string
	for _, mb := range boxes {
		out = append(out, fmt.Sprintf("%s: last_error=%q smtp_last_error=%q", mb.Name, mb.LastError, mb.SMTPLastError))
	}
	return out
}
