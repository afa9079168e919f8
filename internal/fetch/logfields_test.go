package fetch_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// logLines parses a JSON log, one object per line, numbers as
// json.Number.
func logLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(logs)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&line), "log line %q", sc.Text())
		out = append(out, line)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestEveryMailboxLineNamesItsMailbox: in a pass over a mailbox that
// fetches and sends, one whose token is dead, one whose server is down
// and one with a message over its size limit, every log line (token
// requests, warnings and sending included) carries the mailbox's id and
// name, and each mailbox has exactly one "mailbox done" line with its
// counts and duration.
func TestEveryMailboxLineNamesItsMailbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := setupSend(t, db, mailboxtest.SMTPOptions{})
		var logs bytes.Buffer
		b.runner.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		dead := b.addMailbox(t, "Dead", "dead@example.com", "revoked-long-ago")
		down := b.addMailbox(t, "Down", "down@example.com", b.tokens.IssueRefreshToken(clientID, "down@example.com"))
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET port = 1 WHERE id = ?", down))
		big := b.addMailbox(t, "Big", "big@example.com", b.tokens.IssueRefreshToken(clientID, "big@example.com"),
			"max_message_bytes", "300000")
		b.deliver(t, b.user, mail(1, ""), mail(2, "In-Reply-To: <q1@example.org>\r\n"))
		b.deliver(t, "big@example.com", bigMail(400_000))

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.Len(t, sum.Failed, 2, "the dead and the down mailbox fail")

		names := map[int64]string{b.mailbox: "Support", dead: "Dead", down: "Down", big: "Big"}
		done := map[int64]map[string]any{}
		seen := map[string]bool{}
		for _, line := range logLines(t, &logs) {
			// In this pass every line is about one mailbox: the runner
			// writes no line of its own.
			num, ok := line["mailbox_id"].(json.Number)
			require.True(t, ok, "a line without mailbox_id: %v", line)
			id, err := num.Int64()
			require.NoError(t, err)
			require.Equal(t, names[id], line["mailbox"], "mailbox name of %v", line)
			seen[line["msg"].(string)] = true
			if line["msg"] == "mailbox done" {
				require.NotContains(t, done, id, "a second mailbox done line: %v", line)
				done[id] = line
			}
		}
		for _, msg := range []string{"oauth token request", "mailbox failed", "notifications sent",
			"message over the size limit: stored its header only and left it on the server"} {
			require.True(t, seen[msg], "the pass must log %q for this test to check it", msg)
		}

		tests := []struct {
			id            int64
			outcome       string
			fetched       json.Number
			ticketsOpened json.Number
			errorSays     string
		}{
			{b.mailbox, "ok", "2", "1", ""},
			{dead, "failed", "0", "0", "invalid_grant"},
			{down, "failed", "0", "0", "connect"},
			{big, "ok", "1", "1", ""},
		}
		require.Len(t, done, len(tests), "one mailbox done line per mailbox")
		for _, tt := range tests {
			line := done[tt.id]
			for _, field := range []string{"fetched", "tickets_created", "appended", "skipped", "duration_ms", "ok"} {
				require.Contains(t, line, field, "%s: mailbox done", names[tt.id])
			}
			require.Equal(t, tt.outcome, line["outcome"], "%s: outcome", names[tt.id])
			require.Equal(t, tt.fetched, line["fetched"], "%s: fetched", names[tt.id])
			require.Equal(t, tt.ticketsOpened, line["tickets_created"], "%s: tickets_created", names[tt.id])
			if tt.errorSays == "" {
				require.NotContains(t, line, "error", "%s", names[tt.id])
			} else {
				require.Contains(t, line["error"], tt.errorSays, "%s: error", names[tt.id])
			}
		}
		require.Equal(t, json.Number("1"), done[b.mailbox]["appended"], "the reply is threaded")
	})
}
