package main

// Crash tests of the transactional outbox against the real fetcher process
// (docs/notifications.md, "How sending works: the outbox";
// docs/decisions/0012-transactional-outbox.md). A notification is a row
// written in the transaction that stores its message, sent after the
// mailbox's pass and marked sent right after the server's 250. So a
// SIGKILL at any moment loses no notification, and sends one twice only
// when it lands between that 250 and the update, with the same Message-ID.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/mail"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/notify"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

const (
	outboxUser  = "support@example.com"
	outboxAdmin = "lead@example.com"
	// The scopes a Microsoft refresh token is consented for: fetching, and
	// sending, which Exchange checks on every SMTP login.
	outboxIMAPScope = "https://outlook.office.com/IMAP.AccessAsUser.All"
	outboxSendScope = "https://outlook.office.com/SMTP.Send"
)

// TestOutboxSurvivesCrashBetweenCommitAndSend SIGKILLs `fetcher run --once`
// at chosen points of the sending, and at random ones, with N messages
// waiting, each of which calls for two notifications (one to the ticket
// type's admin_email, one acknowledgement to the requester). After the
// kill it checks what the outbox and the SMTP server hold, then lets the
// fetcher run to its end and checks that every notification reached the
// server, once, except for the one duplicate the design allows.
func TestOutboxSurvivesCrashBetweenCommitAndSend(t *testing.T) {
	t.Parallel()
	const n = 5
	// Killed at the first MAIL FROM: the messages and their 2N rows are
	// committed, nothing has reached the server. Proves that a crash after
	// the commit and before any sending loses nothing (every row is
	// pending, untouched, and the next run sends each exactly once) and
	// that a kill before sending counts as no attempt.
	t.Run("killed at the first MAIL", func(t *testing.T) {
		t.Parallel()
		killedAtMail(t, n, 1)
	})
	// Killed at the third MAIL FROM: the first two notifications were
	// accepted. Proves that a row is marked sent as soon as the server
	// accepted it, before the next message is begun (exactly the two
	// accepted rows are sent, with sent_at and smtp_reply), and that the
	// next run sends only the rest: no duplicate after a crash between
	// two messages.
	t.Run("killed at the third MAIL", func(t *testing.T) {
		t.Parallel()
		killedAtMail(t, n, 3)
	})
	// Killed after the server read the whole message (the final dot) and
	// before it replied: the server holds the first notification in OnData
	// and, once the client is gone, refuses it. Proves that the fetcher
	// never takes a message for sent without the server's 250: the row
	// stays pending with no attempt counted, and the next run sends it
	// again with the same Message-ID, so it is delivered once although it
	// crossed the network twice.
	t.Run("killed before the reply to the final dot", killedBeforeReply)
	// Killed in the documented window: the server replied 250 and the
	// fetcher, having read it, is inside the UPDATE that marks the row
	// sent, held there by a row lock the test takes (its backend is ended
	// too, so the update never commits). Proves that the duplicate
	// docs/notifications.md allows is what happens, and all that happens:
	// the row is still pending, the next run sends that one notification
	// again with the same Message-ID (mail systems can recognise the
	// copy), and every other notification exactly once. With the cases
	// above, which send nothing twice, this window is the only source of a
	// duplicate.
	t.Run("killed after the 250, before the row is marked sent", killedBeforeMarkSent)
	// SIGKILLs at random moments over several runs while mail keeps
	// arriving, then a clean run. Proves the invariants at every instant:
	// each stored message has its notifications in the outbox exactly once
	// per (message, kind, recipient); no row is marked sent that the
	// server did not accept; and in the end every notification was
	// accepted, none lost, none sent more often than the kills that
	// landed while sending allow.
	t.Run("random SIGKILLs", func(t *testing.T) {
		t.Parallel()
		randomOutboxKills(t, faultIterations(t, 30))
	})
}

func killedAtMail(t *testing.T, n, k int) {
	r := newOutboxRig(t)
	id := r.addMailbox(t, "Support", outboxUser)
	r.deliver(t, outboxUser, n)
	r.mailGate.arm(k)
	out := runKilledWhen(t, r.env, fmt.Sprintf("MAIL number %d reached the SMTP server", k), r.mailGate.isReached)

	requireExactlyOnce(t, r.pg, id, r.delivered[outboxUser])
	r.requireOutboxComplete(t, id)
	rows := r.outbox(t, id)
	require.Len(t, rows, 2*n, "two notifications per new ticket\n%s", tail(out))
	for i, row := range rows {
		if i < k-1 {
			requireSent(t, row)
		} else {
			requirePending(t, row)
		}
	}
	require.Equal(t, countIDs(rows[:k-1]), r.accepted(outboxUser), "the server has exactly the rows marked sent")
	before := rows

	r.mailGate.open()
	r.cleanRun(t, id)
	rows = r.outbox(t, id)
	for i, row := range rows {
		requireSent(t, row)
		if i < k-1 {
			require.Equal(t, before[i].SentAt, row.SentAt, "row %d keeps the killed run's sent_at", row.ID)
		}
	}
	require.Equal(t, countIDs(rows), r.accepted(outboxUser), "every notification delivered exactly once")
	r.requireNothingMore(t, id)
}

func killedBeforeReply(t *testing.T) {
	t.Parallel()
	const n = 5
	r := newOutboxRig(t)
	id := r.addMailbox(t, "Support", outboxUser)
	r.deliver(t, outboxUser, n)
	// The reply the server gives, to nobody, once the gate opens: it does
	// not keep a message whose client is gone.
	r.afterData = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Connection dropped"}
	r.dataGate.arm(1)
	out := runKilledWhen(t, r.env, "the first message reached the SMTP server", r.dataGate.isReached)

	rows := r.outbox(t, id)
	require.Len(t, rows, 2*n, tail(out))
	for _, row := range rows {
		requirePending(t, row)
	}
	first := rows[0]
	require.Equal(t, map[string]int{first.MessageID: 1}, r.offeredIDs(outboxUser), "the server read the first notification in full")
	require.Empty(t, r.accepted(outboxUser))

	r.dataGate.open()
	r.cleanRun(t, id)
	rows = r.outbox(t, id)
	for _, row := range rows {
		requireSent(t, row)
	}
	require.Equal(t, countIDs(rows), r.accepted(outboxUser), "delivered once each: the interrupted one was not kept")
	offered := countIDs(rows)
	offered[first.MessageID]++
	require.Equal(t, offered, r.offeredIDs(outboxUser), "only the interrupted notification crossed the network twice")
	r.requireSameNotification(t, r.offeredCopies(first.MessageID))
	r.requireNothingMore(t, id)
}

func killedBeforeMarkSent(t *testing.T) {
	t.Parallel()
	const n = 5
	ctx := context.Background()
	r := newOutboxRig(t)
	id := r.addMailbox(t, "Support", outboxUser)
	r.deliver(t, outboxUser, n)
	r.mailGate.arm(1)

	cmd, buf, done := startFetcherRun(t, r.env)
	waitFor(t, done, buf, "the first MAIL", r.mailGate.isReached)
	// The rows are committed and the fetcher is about to send the first:
	// lock them all, so that the update marking it sent waits.
	locker := pgConn(t, r.db)
	tx, err := locker.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "SELECT id FROM outbox WHERE mailbox_id = $1 FOR UPDATE", id)
	require.NoError(t, err)
	r.mailGate.open()
	var waiter int32
	waitFor(t, done, buf, "the server accepted the first notification and the fetcher waits to mark it sent", func() bool {
		if len(r.accepted(outboxUser)) == 0 {
			return false
		}
		waiter = outboxUpdateWaiting(t, r.pg)
		return waiter != 0
	})
	killNow(t, cmd, done)
	// The killed process's backend still waits for the lock, with the
	// update in hand; left alone it would complete once the lock goes.
	// Ending it makes the crash land before the update committed, which
	// is what a crash in this window is.
	_, err = r.pg.Exec(ctx, "SELECT pg_terminate_backend($1)", waiter)
	require.NoError(t, err)
	for deadline := time.Now().Add(10 * time.Second); pgInt(t, r.pg, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", waiter) > 0; {
		require.True(t, time.Now().Before(deadline), "backend %d of the killed fetcher did not end", waiter)
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, tx.Rollback(ctx))

	rows := r.outbox(t, id)
	require.Len(t, rows, 2*n, tail(buf.String()))
	for _, row := range rows {
		requirePending(t, row)
	}
	first := rows[0]
	require.Equal(t, map[string]int{first.MessageID: 1}, r.accepted(outboxUser),
		"the server accepted the first notification; its row still says pending")

	r.cleanRun(t, id)
	rows = r.outbox(t, id)
	for _, row := range rows {
		requireSent(t, row)
	}
	want := countIDs(rows)
	want[first.MessageID]++
	require.Equal(t, want, r.accepted(outboxUser),
		"the notification in flight is delivered twice, with the same Message-ID; every other once")
	r.requireSameNotification(t, r.acceptedCopies(first.MessageID))
	r.requireNothingMore(t, id)
}

func randomOutboxKills(t *testing.T, iterations int) {
	began := time.Now()
	r := newOutboxRig(t)
	const calibUser = "calibrate@example.com"

	// How long do unkilled runs take here: one with nothing to do, and one
	// storing a batch and sending its notifications?
	const batch = 8
	calib := r.addMailbox(t, "Calibration", calibUser)
	r.deliver(t, calibUser, batch)
	full, empty := timedRun(t, r.env), timedRun(t, r.env)
	require.Len(t, r.accepted(calibUser), 2*batch, "the calibration run sent its notifications")
	perMessage := max(full-empty, 0) / batch
	require.NoError(t, r.db.Exec(context.Background(), "UPDATE mailboxes SET enabled = false WHERE id = ?", calib))

	id := r.addMailbox(t, "Support", outboxUser)
	r.deliver(t, outboxUser, batch)
	phases := map[string]int{}
	kills, sendingKills := 0, 0
	for i := range iterations {
		if i > 0 && r.rng.IntN(2) == 0 {
			r.deliver(t, outboxUser, 3+r.rng.IntN(6)) // mail keeps arriving between crashes
		}
		r.quiet()
		readyForNextRun(t, r.pg, id)
		stored := pgInt(t, r.pg, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = $1", id)
		pending := pgInt(t, r.pg, "SELECT count(*) FROM outbox WHERE mailbox_id = $1 AND status = 'pending'", id)
		waiting := float64(int64(len(r.delivered[outboxUser]))-stored) + float64(pending)/2
		// The kill lands anywhere from late in the start-up (which is
		// most of a run, and which TestSIGKILLLosesNothing covers) to a
		// little after the expected end, so that the storing and the
		// sending, which comes last, are hit often.
		expected := empty + time.Duration(waiting*float64(perMessage))
		delay := empty*3/4 + time.Duration(r.rng.Int64N(int64(expected*6/5-empty*3/4)+1))
		conns, accepted := r.smtp.Conns(), len(r.smtp.Messages())
		killed, code, out := runKilled(t, r.env, delay)
		when := fmt.Sprintf("iteration %d (kill after %s)", i, delay)
		// A session that got as far as a message was counted long before
		// the kill, so this never misses a kill that could cause a
		// duplicate.
		sending := r.smtp.Conns() > conns
		switch {
		case killed && sending:
			kills++
			sendingKills++
		case killed:
			kills++
		case code != exitOK:
			t.Errorf("%s: a run that was not killed failed with exit %d:\n%s", when, code, tail(out))
		}
		require.Zero(t, progressOf(t, r.pg, id).doubled, "%s: a Message-ID is stored twice", when)
		r.requireOutboxComplete(t, id)
		r.requireSentWasAccepted(t, id, when)
		ph := outboxPhase(t, r, id, killed, sending, len(r.smtp.Messages()) > accepted, stored, pending)
		phases[ph]++
	}

	// Clean runs: a pass sends at most 100 notifications (sendBatch), so
	// a backlog left by many kills takes more than one.
	for pass := 1; pass == 1 || pgInt(t, r.pg, "SELECT count(*) FROM outbox WHERE mailbox_id = $1 AND status = 'pending'", id) > 0; pass++ {
		require.LessOrEqual(t, pass, 5, "notifications still pending after 4 clean runs")
		r.cleanRun(t, id)
	}
	r.requireNothingMore(t, id)

	requireExactlyOnce(t, r.pg, id, r.delivered[outboxUser])
	r.requireOutboxComplete(t, id)
	rows := r.outbox(t, id)
	require.Len(t, rows, 2*len(r.delivered[outboxUser]))
	for _, row := range rows {
		require.Equal(t, store.OutboxSent, row.Status, "row %d (%s): no notification is lost", row.ID, row.Kind)
		require.NotNil(t, row.SentAt)
		require.NotNil(t, row.SMTPReply)
	}
	accepted := r.accepted(outboxUser)
	require.ElementsMatch(t, slices.Collect(maps.Keys(countIDs(rows))), slices.Collect(maps.Keys(accepted)),
		"the server accepted exactly the outbox's notifications")
	extra := 0
	for mid, c := range accepted {
		require.LessOrEqual(t, c, 1+sendingKills, "%s accepted %d times with %d kills while sending", mid, c, sendingKills)
		extra += c - 1
	}
	require.LessOrEqual(t, extra, sendingKills, "each kill while sending may send at most the one notification in flight again")

	t.Logf("%d iterations, %d killed (%d while an SMTP session was open), %d messages, %d notifications, %d sent twice; "+
		"an unkilled run took %s with nothing to do, %s over %d messages; whole case %s",
		iterations, kills, sendingKills, len(r.delivered[outboxUser]), len(rows), extra,
		empty.Round(time.Millisecond), full.Round(time.Millisecond), batch, time.Since(began).Round(time.Millisecond))
	for _, p := range slices.Sorted(maps.Keys(phases)) {
		t.Logf("  %3d × %s", phases[p], p)
	}
}

// outboxPhase names where a run of the sweep ended, from the rows before
// it (stored messages, pending notifications) and after.
func outboxPhase(t *testing.T, r *outboxRig, id int64, killed, sending, accepted bool, stored, pending int64) string {
	t.Helper()
	nowStored := pgInt(t, r.pg, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = $1", id)
	nowPending := pgInt(t, r.pg, "SELECT count(*) FROM outbox WHERE mailbox_id = $1 AND status = 'pending'", id)
	switch {
	case !killed:
		return "run ended before the kill"
	case sending && nowPending == 0:
		return "killed after sending everything"
	case accepted:
		return "killed mid-sending: some notifications accepted, others still pending"
	case sending:
		return "killed in the SMTP session before any message was accepted (login, MAIL, DATA)"
	case nowStored > stored:
		return "killed after storing mail, before sending"
	case nowPending != pending:
		return "killed with outbox rows changed, no SMTP session"
	default:
		return "killed before anything was committed"
	}
}

// outboxRig is a database, a token endpoint, an IMAP server and an SMTP
// submission server that wants STARTTLS, and XOAUTH2 with a token that
// carries SMTP.Send, its response on its own line (like Exchange), all
// serving one certificate, which the fetcher trusts.
type outboxRig struct {
	db     *store.DB
	pg     *pgx.Conn
	tokens *oauthtest.Server
	imap   *mailboxtest.IMAPServer
	smtp   *mailboxtest.SMTPServer
	env    map[string]string
	rng    *rand.Rand

	// mailGate stops the SMTP server at a MAIL command, dataGate after it
	// read a whole message; afterData is the reply to a message the
	// dataGate stopped.
	mailGate, dataGate *smtpGate
	afterData          *smtp.SMTPError

	mu      sync.Mutex
	offered []mailboxtest.SMTPMessage // every message the server read in full, kept or not

	delivered map[string]map[string]sent // user → Message-ID → message
	next      int
}

func newOutboxRig(t *testing.T) *outboxRig {
	t.Helper()
	r := &outboxRig{
		db: storetest.Postgres(t), rng: faultRand(t), mailGate: newSMTPGate(), dataGate: newSMTPGate(),
		delivered: map[string]map[string]sent{},
	}
	r.pg = pgConn(t, r.db)
	r.tokens = oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(r.tokens.Close)
	r.tokens.AddClient("app", "app-secret")
	var err error
	r.imap, err = mailboxtest.StartIMAP(mailboxtest.IMAPOptions{CheckToken: func(u, tok string) bool {
		got, ok := r.tokens.AccessTokenUser(tok)
		return ok && got == u
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.imap.Close() })
	r.smtp, err = mailboxtest.StartSMTP(mailboxtest.SMTPOptions{
		Security: "starttls", Cert: r.imap.Cert, NoInitialResponse: true,
		CheckToken: func(u, tok string) bool {
			at, ok := r.tokens.AccessToken(tok)
			return ok && at.User == u && slices.Contains(at.Scopes, outboxSendScope)
		},
		OnMail: func(string) *smtp.SMTPError {
			r.mailGate.pass()
			return nil
		},
		OnData: func(m mailboxtest.SMTPMessage) *smtp.SMTPError {
			r.mu.Lock()
			r.offered = append(r.offered, m)
			r.mu.Unlock()
			if r.dataGate.pass() {
				return r.afterData
			}
			return nil
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.smtp.Close() })
	// Before the server closes: a session may wait at a gate.
	t.Cleanup(r.mailGate.open)
	t.Cleanup(r.dataGate.open)
	r.env = faultEnv(t, r.db.URL(), r.imap.Cert.PEM)
	return r
}

// addMailbox adds a mailbox fetching user's INBOX that sends, and a ticket
// type that notifies outboxAdmin of each new ticket and acknowledges it.
func (r *outboxRig) addMailbox(t *testing.T, name, user string) int64 {
	t.Helper()
	ctx := context.Background()
	r.imap.AddUser(user, faultPassword)
	require.NoError(t, r.db.Exec(ctx, `INSERT INTO mailboxes
		(name, protocol, host, port, use_ssl, username, oauth_provider, tenant_id, client_id, client_secret,
		 refresh_token, authority_url, after_fetch, smtp_enabled, smtp_host, smtp_port, smtp_security, smtp_from_name)
		VALUES (?, 'imap', ?, ?, true, ?, 'microsoft', 'contoso.onmicrosoft.com', 'app', 'app-secret',
		 ?, ?, 'mark_seen', true, ?, ?, 'starttls', 'Contoso Support')`,
		name, r.imap.Host(), r.imap.Port(), user, r.tokens.IssueRefreshToken("app", user, outboxIMAPScope, outboxSendScope),
		r.tokens.URL(), r.smtp.Host(), r.smtp.Port()))
	var id int64
	require.NoError(t, r.db.QueryRow(ctx, "SELECT id FROM mailboxes WHERE name = ?", []any{name}, &id))
	require.NoError(t, r.db.Exec(ctx, `INSERT INTO ticket_types (name, mailbox_id, admin_email, acknowledge)
		VALUES (?, ?, ?, true)`, name+" tickets", id, outboxAdmin))
	return id
}

// deliver puts n new messages in user's INBOX, each from a requester of
// its own (so no acknowledgement is rate-limited).
func (r *outboxRig) deliver(t *testing.T, user string, n int) {
	t.Helper()
	if r.delivered[user] == nil {
		r.delivered[user] = map[string]sent{}
	}
	for range n {
		m := faultMail(r.rng, strings.Split(user, "@")[0], r.next)
		r.next++
		_, err := r.imap.Deliver(user, "INBOX", m.raw)
		require.NoError(t, err)
		r.delivered[user][m.id] = m
	}
}

// quiet waits until the mail servers let go of a killed fetcher's sessions.
func (r *outboxRig) quiet() {
	for deadline := time.Now().Add(10 * time.Second); r.imap.OpenConns() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// cleanRun runs the fetcher to its end as the next run after a crash
// (the lease of the killed process expired), requiring success.
func (r *outboxRig) cleanRun(t *testing.T, ids ...int64) {
	t.Helper()
	r.quiet()
	readyForNextRun(t, r.pg, ids...)
	code, out := runFetcher(t, r.env)
	require.Equal(t, exitOK, code, "the run after the crash:\n%s", tail(out))
}

// requireNothingMore runs the fetcher once more: with nothing due it must
// not even connect to the SMTP server, and nothing more is accepted.
func (r *outboxRig) requireNothingMore(t *testing.T, id int64) {
	t.Helper()
	conns, offered := r.smtp.Conns(), r.offeredTotal()
	r.cleanRun(t, id)
	require.Equal(t, conns, r.smtp.Conns(), "a run with nothing due opened an SMTP session")
	require.Equal(t, offered, r.offeredTotal(), "a run with nothing due sent something")
}

// outboxRow is an outbox row as the checks read it.
type outboxRow = store.OutboxMessage

func (r *outboxRig) outbox(t *testing.T, mailboxID int64) []outboxRow {
	t.Helper()
	rows, err := r.db.Outbox().List(context.Background(), mailboxID, 100000)
	require.NoError(t, err)
	slices.Reverse(rows) // oldest first: the order of sending
	return rows
}

// requireOutboxComplete checks that every stored message of the mailbox
// has exactly its two notifications (a new ticket to the admin, an
// acknowledgement to its sender), that there is no other row, and that
// each is pending or sent.
func (r *outboxRig) requireOutboxComplete(t *testing.T, id int64) {
	t.Helper()
	require.Zero(t, pgInt(t, r.pg, `SELECT count(*) FROM ticket_messages m WHERE m.mailbox_id = $1 AND (
			(SELECT count(*) FROM outbox o WHERE o.ticket_message_id = m.id AND o.kind = $2 AND o.recipient = $3) <> 1
			OR (SELECT count(*) FROM outbox o WHERE o.ticket_message_id = m.id AND o.kind = $4 AND lower(o.recipient) = lower(m.from_email)) <> 1
			OR (SELECT count(*) FROM outbox o WHERE o.ticket_message_id = m.id) <> 2)`,
		id, notify.KindNewTicket, outboxAdmin, notify.KindAck),
		"stored messages without exactly their two notifications")
	require.Zero(t, pgInt(t, r.pg, `SELECT count(*) - count(DISTINCT (ticket_message_id, kind, recipient)) FROM outbox WHERE mailbox_id = $1`, id),
		"a notification queued twice")
	require.Equal(t, 2*pgInt(t, r.pg, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = $1", id),
		pgInt(t, r.pg, "SELECT count(*) FROM outbox WHERE mailbox_id = $1", id), "outbox rows about no stored message")
	require.Zero(t, pgInt(t, r.pg, "SELECT count(*) FROM outbox WHERE mailbox_id = $1 AND status NOT IN ('pending', 'sent')", id),
		"rows failed or suppressed")
}

// requireSentWasAccepted checks that no row is marked sent whose
// notification the server did not accept.
func (r *outboxRig) requireSentWasAccepted(t *testing.T, id int64, when string) {
	t.Helper()
	var user string
	require.NoError(t, r.pg.QueryRow(context.Background(), "SELECT username FROM mailboxes WHERE id = $1", id).Scan(&user))
	accepted := r.accepted(user)
	for _, row := range r.outbox(t, id) {
		if row.Status == store.OutboxSent {
			require.Positive(t, accepted[row.MessageID], "%s: row %d is marked sent, but the server never accepted %s", when, row.ID, row.MessageID)
		}
	}
}

func requirePending(t *testing.T, row outboxRow) {
	t.Helper()
	require.Equal(t, store.OutboxPending, row.Status, "row %d (%s)", row.ID, row.Kind)
	require.Zero(t, row.Attempts, "row %d: a killed run counts no attempt", row.ID)
	require.Nil(t, row.SentAt, "row %d", row.ID)
	require.Nil(t, row.SMTPReply, "row %d", row.ID)
	require.Nil(t, row.LastError, "row %d", row.ID)
}

// requireSent checks a row sent at its first attempt: a killed run counts
// none.
func requireSent(t *testing.T, row outboxRow) {
	t.Helper()
	require.Equal(t, store.OutboxSent, row.Status, "row %d (%s)", row.ID, row.Kind)
	require.Equal(t, 1, row.Attempts, "row %d", row.ID)
	require.NotNil(t, row.SentAt, "row %d: sent_at", row.ID)
	require.NotNil(t, row.SMTPReply, "row %d: smtp_reply", row.ID)
	require.NotEmpty(t, *row.SMTPReply, "row %d: smtp_reply", row.ID)
	require.Nil(t, row.LastError, "row %d", row.ID)
}

// accepted counts the messages the SMTP server accepted from user's
// logins, by Message-ID.
func (r *outboxRig) accepted(user string) map[string]int {
	out := map[string]int{}
	for _, m := range r.smtp.Messages() {
		if m.User == user {
			out[headerOf(m.Data).Get("Message-ID")]++
		}
	}
	return out
}

// offeredIDs counts the messages the SMTP server read in full from user's
// logins, kept or not, by Message-ID.
func (r *outboxRig) offeredIDs(user string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, m := range r.offered {
		if m.User == user {
			out[headerOf(m.Data).Get("Message-ID")]++
		}
	}
	return out
}

// offeredTotal counts the messages the SMTP server read in full.
func (r *outboxRig) offeredTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.offered)
}

func (r *outboxRig) offeredCopies(messageID string) []mailboxtest.SMTPMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []mailboxtest.SMTPMessage
	for _, m := range r.offered {
		if headerOf(m.Data).Get("Message-ID") == messageID {
			out = append(out, m)
		}
	}
	return out
}

func (r *outboxRig) acceptedCopies(messageID string) []mailboxtest.SMTPMessage {
	var out []mailboxtest.SMTPMessage
	for _, m := range r.smtp.Messages() {
		if headerOf(m.Data).Get("Message-ID") == messageID {
			out = append(out, m)
		}
	}
	return out
}

// requireSameNotification checks that copies (two sendings of one row) are
// the same notification: envelope, subject, threading and text; only the
// Date may differ.
func (r *outboxRig) requireSameNotification(t *testing.T, copies []mailboxtest.SMTPMessage) {
	t.Helper()
	require.Len(t, copies, 2)
	a, b := parseMail(t, copies[0].Data), parseMail(t, copies[1].Data)
	require.Equal(t, copies[0].From, copies[1].From)
	require.Equal(t, copies[0].To, copies[1].To)
	for _, h := range []string{"Message-ID", "Subject", "From", "To", "In-Reply-To", "References", "Auto-Submitted"} {
		require.Equal(t, a.Header.Get(h), b.Header.Get(h), h)
	}
	require.Equal(t, a.body, b.body)
}

type parsedMail struct {
	Header mail.Header
	body   string
}

func parseMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	var body bytes.Buffer
	_, err = body.ReadFrom(m.Body)
	require.NoError(t, err)
	return parsedMail{m.Header, body.String()}
}

func headerOf(raw []byte) mail.Header {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return mail.Header{}
	}
	return m.Header
}

// countIDs counts rows by Message-ID.
func countIDs(rows []outboxRow) map[string]int {
	out := map[string]int{}
	for _, row := range rows {
		out[row.MessageID]++
	}
	return out
}

// outboxUpdateWaiting returns the backend of the test's database that
// waits for a lock in an UPDATE of outbox, 0 if none does.
func outboxUpdateWaiting(t *testing.T, pg *pgx.Conn) int32 {
	t.Helper()
	var pid int32
	err := pg.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
		  AND query ILIKE 'UPDATE%outbox%' LIMIT 1`).Scan(&pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	require.NoError(t, err)
	return pid
}

// smtpGate stops the SMTP server at the nth call of a hook once armed: the
// call closes reached and waits until the gate opens. Other calls go
// through. It is safe for concurrent use.
type smtpGate struct {
	mu      sync.Mutex
	at      int // the call to stop at; 0: none
	calls   int
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func newSMTPGate() *smtpGate {
	return &smtpGate{reached: make(chan struct{}), release: make(chan struct{})}
}

// arm makes the nth call from now stop.
func (g *smtpGate) arm(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.at, g.calls = n, 0
}

// pass is the hook's part: it reports whether this call was the one
// stopped (and has since been let go).
func (g *smtpGate) pass() bool {
	g.mu.Lock()
	g.calls++
	stop := g.at > 0 && g.calls == g.at
	g.mu.Unlock()
	if !stop {
		return false
	}
	close(g.reached)
	<-g.release
	return true
}

func (g *smtpGate) isReached() bool {
	select {
	case <-g.reached:
		return true
	default:
		return false
	}
}

// open lets the stopped call, and every later one, go on.
func (g *smtpGate) open() { g.once.Do(func() { close(g.release) }) }

// runKilledWhen starts `fetcher run --once`, SIGKILLs it as soon as ready
// reports true, and returns its output. The run must not end before.
func runKilledWhen(t *testing.T, env map[string]string, what string, ready func() bool) string {
	t.Helper()
	cmd, buf, done := startFetcherRun(t, env)
	waitFor(t, done, buf, what, ready)
	killNow(t, cmd, done)
	return buf.String()
}

// startFetcherRun starts `fetcher run --once`; done reports its Wait. A
// process still running when the test ends (it failed) is killed.
func startFetcherRun(t *testing.T, env map[string]string) (*exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	cmd, buf := fetcherProcess(t, env, "run", "--once")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, buf, done
}

// waitFor polls ready until it holds; the process (whose Wait reports on
// done) must not end meanwhile.
func waitFor(t *testing.T, done chan error, buf *bytes.Buffer, what string, ready func() bool) {
	t.Helper()
	deadline := time.NewTimer(processTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before %s:\n%s", err, what, tail(buf.String()))
		case <-deadline.C:
			t.Fatalf("not within %s: %s", processTimeout, what)
		case <-tick.C:
		}
	}
}

// killNow SIGKILLs a process that must still be running, and waits for it.
func killNow(t *testing.T, cmd *exec.Cmd, done chan error) {
	t.Helper()
	require.NoError(t, cmd.Process.Kill())
	err := <-done
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee) && !ee.Exited(), "the process ended by itself (%v) before the kill", err)
}
