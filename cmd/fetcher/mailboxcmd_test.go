package main

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

const (
	testIMAPScope = "https://outlook.office.com/IMAP.AccessAsUser.All"
	testSendScope = "https://outlook.office.com/SMTP.Send"
)

// probeState is what a probe must leave alone.
type probeState struct {
	Status, LastError, Warning string
	Failures                   int
	Tickets, Runs              int64
}

func stateOf(t *testing.T, db *store.DB, name string) probeState {
	t.Helper()
	ctx := context.Background()
	mb, err := db.Mailboxes().GetByName(ctx, name)
	require.NoError(t, err)
	s := probeState{Status: mb.Status, LastError: mb.LastError, Warning: mb.Warning, Failures: mb.ConsecutiveFailures}
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", []any{mb.ID}, &s.Tickets))
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM fetch_runs WHERE mailbox_id = ?", []any{mb.ID}, &s.Runs))
	return s
}

// TestMailboxTest: `fetcher mailbox test` gets a token (storing the
// rotated refresh token), logs in, counts the messages and logs in to
// SMTP, fetching, sending and recording nothing; a refused refresh token
// fails with the advice a pass stores, and leaves the status alone.
func TestMailboxTest(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := storetest.Open(t, d)
			env, tokens, imapSrv := servers(t, db)
			smtpSrv, err := mailboxtest.StartSMTP(mailboxtest.SMTPOptions{
				Security: "starttls", Cert: imapSrv.Cert, NoInitialResponse: true,
				CheckToken: func(u, tok string) bool {
					at, ok := tokens.AccessToken(tok)
					return ok && at.User == u && slices.Contains(at.Scopes, testSendScope)
				},
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = smtpSrv.Close() })

			const user = "help@example.com"
			imapSrv.AddUser(user, faultPassword) // the test looks at the mailbox with it
			good := tokens.IssueRefreshToken("app", user, testIMAPScope, testSendScope)
			insertMailbox(t, db, "Help", user, good, imapSrv, tokens)
			require.NoError(t, db.Exec(ctx, `UPDATE mailboxes SET smtp_enabled = true, smtp_host = ?, smtp_port = ?,
				smtp_security = 'starttls' WHERE name = 'Help'`, smtpSrv.Host(), smtpSrv.Port()))
			for i := range 2 {
				_, err := imapSrv.Deliver(user, "INBOX", []byte(fmt.Sprintf("From: a@example.org\r\nSubject: %d\r\nMessage-ID: <%d@example.org>\r\n\r\nbody\r\n", i, i)))
				require.NoError(t, err)
			}
			insertMailbox(t, db, "Stale", "stale@example.com", "M.C512_BAY.0.U.-stale-token", imapSrv, tokens)
			imapSrv.AddUser("stale@example.com", "")
			before := map[string]probeState{"Help": stateOf(t, db, "Help"), "Stale": stateOf(t, db, "Stale")}

			r := runMain(t, ctx, env, "mailbox", "test", "Help")
			require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			for _, want := range []string{
				`Testing mailbox 1 "Help" (imap, help@example.com at 127.0.0.1:`,
				"  ok    settings ", "  ok    token ", "the provider rotated the refresh token: the new one is stored",
				"  ok    log in ", "logged in as help@example.com (XOAUTH2)",
				"  ok    folder ", `folder "INBOX": 2 messages`,
				"  ok    smtp ", "(STARTTLS) as help@example.com (XOAUTH2); nothing sent",
				"Every step passed.",
			} {
				require.Contains(t, r.stdout, want)
			}
			help, err := db.Mailboxes().GetByName(ctx, "Help")
			require.NoError(t, err)
			require.NotEqual(t, good, help.RefreshToken, "the rotated refresh token is stored")
			require.NotEmpty(t, help.RefreshToken)
			require.Equal(t, before["Help"], stateOf(t, db, "Help"), "no ticket, no fetch run, no status change")
			require.Empty(t, smtpSrv.Messages(), "nothing sent")
			require.Equal(t, map[string]bool{"<0@example.org>": false, "<1@example.org>": false},
				imapState(t, imapSrv.Addr, imapSrv.Cert.Pool, user), "the mail stays on the server, unseen")
			require.NotContains(t, r.stdout+r.stderr, good)
			require.NotContains(t, r.stdout+r.stderr, help.RefreshToken)

			// Once more: the cached token is used; --refresh gets a new one.
			r = runMain(t, ctx, env, "mailbox", "test", "1")
			require.Equal(t, exitOK, r.code, r.stdout)
			require.Contains(t, r.stdout, "cached access token, valid until")
			requests := tokens.Requests()
			r = runMain(t, ctx, env, "mailbox", "test", "--refresh", "Help")
			require.Equal(t, exitOK, r.code, r.stdout)
			require.Contains(t, r.stdout, "new access token, valid until")
			require.Greater(t, tokens.Requests(), requests)

			r = runMain(t, ctx, env, "mailbox", "test", "Stale")
			require.Equal(t, exitFailed, r.code, r.stdout)
			for _, want := range []string{
				"  FAIL  token ", "AADSTS70008", `Do this: run fetcher authorize "Stale" to sign in again`,
				"  skip  log in ", "an earlier step failed",
				"A pass would set status needs_reauth with this error. The mailbox's status and last_error were left as they are.",
			} {
				require.Contains(t, r.stdout, want)
			}
			require.Contains(t, r.stderr, `mailbox "Stale": mailbox test failed (failed at: token)`)
			require.NotContains(t, r.stdout+r.stderr, "stale-token")
			require.Equal(t, before["Stale"], stateOf(t, db, "Stale"), "a probe records no failure")
			require.Empty(t, smtpSrv.Messages())
		})
	}
}

// TestMailboxTestRefusedLogin: a token the IMAP server refuses fails the
// login step with the login advice a pass stores.
func TestMailboxTestRefusedLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	env, tokens, imapSrv := servers(t, db)
	// The server knows another user: the token, issued for this one, is refused.
	imapSrv.AddUser("other@example.com", "")
	insertMailbox(t, db, "Wrong", "other@example.com", tokens.IssueRefreshToken("app", "wrong@example.com"), imapSrv, tokens)
	before := stateOf(t, db, "Wrong")
	r := runMain(t, ctx, env, "mailbox", "test", "Wrong")
	require.Equal(t, exitFailed, r.code, r.stdout)
	require.Contains(t, r.stdout, "  ok    token ")
	require.Contains(t, r.stdout, "  FAIL  log in ")
	require.Contains(t, r.stdout, "Do this: check that username is the mailbox the token was issued for")
	require.Contains(t, r.stdout, "  skip  folder ")
	require.Contains(t, r.stdout, "  skip  smtp ", "sending is off (smtp_enabled = false)")
	require.Equal(t, before, stateOf(t, db, "Wrong"))
}

// TestMailboxTestBadRow: a row that cannot work fails at settings, naming
// the column, without a token request.
func TestMailboxTestBadRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.SQLite(t)
	env, tokens, imapSrv := servers(t, db)
	insertMailbox(t, db, "Bad", "bad@example.com", "rt", imapSrv, tokens)
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET after_fetch = 'archive' WHERE name = 'Bad'"))
	r := runMain(t, ctx, env, "mailbox", "test", "Bad")
	require.Equal(t, exitFailed, r.code, r.stdout)
	require.Contains(t, r.stdout, "  FAIL  settings ")
	require.Contains(t, r.stdout, `mailbox setting after_fetch: "archive" is not allowed`)
	require.Contains(t, r.stdout, "A pass would set status failing")
	require.Zero(t, tokens.Requests())
}
