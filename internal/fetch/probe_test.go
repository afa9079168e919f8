package fetch_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// stepNames returns each step's name and outcome: ok, FAIL or skip.
func stepNames(res fetch.ProbeResult) []string {
	var out []string
	for _, s := range res.Steps {
		switch {
		case s.Skipped != "":
			out = append(out, "skip "+s.Name)
		case s.Err != nil:
			out = append(out, "FAIL "+s.Name)
		default:
			out = append(out, "ok "+s.Name)
		}
	}
	return out
}

// TestProbeIMAP: a probe counts the folder's messages and stores the
// rotated refresh token, and nothing else: no ticket, no run, no \Seen,
// no status; the next pass fetches every message.
func TestProbeIMAP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		const user = "probe@example.com"
		rt := b.tokens.IssueRefreshToken(clientID, user)
		id := b.addMailbox(t, "Probe", user, rt)
		b.deliver(t, user, mail(1, ""), mail(2, ""), mail(3, ""))
		mb, err := db.Mailboxes().Get(ctx, id)
		require.NoError(t, err)

		var live []string
		res := b.runner.Probe(ctx, mb, fetch.ProbeOptions{Step: func(s fetch.ProbeStep) { live = append(live, s.Name) }})
		require.True(t, res.OK(), "%v", res.Steps)
		require.Equal(t, []string{"ok settings", "ok token", "ok log in", "ok folder", "skip smtp"}, stepNames(res))
		require.Equal(t, []string{"settings", "token", "log in", "folder", "smtp"}, live, "each step reported as it ends")
		require.Equal(t, 3, res.Messages)
		require.Contains(t, res.Steps[3].Detail, `folder "INBOX": 3 messages`)
		require.NoError(t, fetch.ProbeFailed(res))

		after, err := db.Mailboxes().Get(ctx, id)
		require.NoError(t, err)
		require.NotEqual(t, rt, after.RefreshToken, "the rotated refresh token is stored")
		require.Equal(t, int64(0), count(t, db, "SELECT count(*) FROM ticket_messages"))
		require.Equal(t, int64(0), count(t, db, "SELECT count(*) FROM fetch_runs"))
		require.Equal(t, 0, seenCount(t, b, user))
		require.Equal(t, []any{mb.Status, mb.LastError, mb.Warning, mb.LastSuccessAt, mb.ConsecutiveFailures},
			[]any{after.Status, after.LastError, after.Warning, after.LastSuccessAt, after.ConsecutiveFailures}, "the state is untouched")

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, 3, sum.Runs[0].MessagesFetched, "the probe took nothing away from the pass")
	})
}

// TestProbeFailures: each failure names its step, with the status and
// the text a pass would store, and records nothing.
func TestProbeFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		refresh    string
		set        string
		wantSteps  []string
		wantStatus string
		wantText   string
	}{
		{"dead refresh token", "revoked-long-ago", "", []string{"ok settings", "FAIL token", "skip log in", "skip folder", "skip smtp"},
			store.StatusNeedsReauth, "AADSTS70008"},
		{"bad column", "", "after_fetch = 'archive'", []string{"FAIL settings", "skip token", "skip log in", "skip folder", "skip smtp"},
			store.StatusFailing, `mailbox setting after_fetch: "archive" is not allowed for imap`},
		{"missing folder", "", "folder = 'Tickets'", []string{"ok settings", "ok token", "ok log in", "FAIL folder", "skip smtp"},
			store.StatusFailing, `"Tickets"`},
		{"smtp refused", "", "smtp_enabled = true, smtp_host = '127.0.0.1', smtp_port = 1, smtp_security = 'tls'",
			[]string{"ok settings", "ok token", "ok log in", "ok folder", "FAIL smtp"}, "", "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := storetest.SQLite(t)
			b := setup(t, db)
			ctx := context.Background()
			const user = "fail@example.com"
			rt := tt.refresh
			if rt == "" {
				rt = b.tokens.IssueRefreshToken(clientID, user)
			}
			id := b.addMailbox(t, "Fail", user, rt)
			if tt.set != "" {
				require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET "+tt.set+" WHERE id = ?", id))
			}
			mb, err := db.Mailboxes().Get(ctx, id)
			require.NoError(t, err)
			res := b.runner.Probe(ctx, mb, fetch.ProbeOptions{})
			require.False(t, res.OK())
			require.Equal(t, tt.wantSteps, stepNames(res))
			for _, s := range res.Steps {
				if s.Err != nil {
					require.Equal(t, tt.wantStatus, s.Status)
					require.Contains(t, s.Message, tt.wantText)
				}
			}
			require.Error(t, fetch.ProbeFailed(res))
			after, err := db.Mailboxes().Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, store.StatusActive, after.Status)
			require.Empty(t, after.LastError)
			require.Zero(t, after.ConsecutiveFailures)
			require.Equal(t, int64(0), count(t, db, "SELECT count(*) FROM fetch_runs"))
		})
	}
}

// TestProbePOP3: the maildrop is counted, and the probe's QUIT deletes
// nothing.
func TestProbePOP3(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	b := setupPOP3(t, db, "delete")
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		_, err := b.pop.Deliver("pop@example.com", []byte(popMail(i)))
		require.NoError(t, err)
	}
	mb, err := db.Mailboxes().Get(ctx, b.id)
	require.NoError(t, err)
	res := b.runner.Probe(ctx, mb, fetch.ProbeOptions{})
	require.True(t, res.OK(), "%v", res.Steps)
	require.Equal(t, 2, res.Messages)
	require.Contains(t, res.Steps[3].Detail, "maildrop: 2 messages")
	require.Len(t, b.pop.Messages("pop@example.com"), 2, "nothing deleted")
	require.Equal(t, int64(0), count(t, db, "SELECT count(*) FROM ticket_messages"))
}

// TestProbePOP3WaitsForTheWorker: a POP3 server locks the maildrop for one
// session, so a probe while a worker holds the mailbox's lease does not
// log in (the worker's login would be refused), and says why; the probe
// holds the lease itself while it is logged in, and gives it back.
func TestProbePOP3WaitsForTheWorker(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	b := setupPOP3(t, db, "keep")
	ctx := context.Background()
	mb, err := db.Mailboxes().Get(ctx, b.id)
	require.NoError(t, err)

	ok, err := db.Mailboxes().Lease(ctx, b.id, "other-worker", time.Now(), time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	res := b.runner.Probe(ctx, mb, fetch.ProbeOptions{})
	require.False(t, res.OK())
	require.Equal(t, fetch.ProbeLogin, res.Steps[2].Name)
	require.ErrorContains(t, res.Steps[2].Err, "a worker is fetching this mailbox right now")
	require.Equal(t, "an earlier step failed", res.Steps[3].Skipped)
	require.Zero(t, b.pop.Logins(), "no login while the worker holds the maildrop")

	require.NoError(t, db.Mailboxes().Release(ctx, b.id, "other-worker"))
	res = b.runner.Probe(ctx, mb, fetch.ProbeOptions{})
	require.True(t, res.OK(), "%v", res.Steps)
	ok, err = db.Mailboxes().Lease(ctx, b.id, "other-worker", time.Now(), time.Minute)
	require.NoError(t, err)
	require.True(t, ok, "the probe gave its lease back")
}
