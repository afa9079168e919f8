package fetch_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/logtest"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// commands counts the client's IMAP commands by name in the server's
// protocol trace: the tagged lines other than the server's tagged replies.
func commands(trace *logtest.Buffer) map[string]int {
	out := map[string]int{}
	re := regexp.MustCompile(`(?m)^[A-Za-z0-9.]+ (UID )?([A-Z]+)`)
	for _, m := range re.FindAllStringSubmatch(trace.String(), -1) {
		if verb := m[2]; verb != "OK" && verb != "NO" && verb != "BAD" {
			out[m[1]+verb]++
		}
	}
	return out
}

// TestBacklogIsFetchedInFewCommands: a backlog of 450 messages costs a
// handful of FETCH and STORE commands, not one per message, and every
// message is stored once, in order.
func TestBacklogIsFetchedInFewCommands(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tr := &logtest.Buffer{}
		b := setupWith(t, db, oauthtest.Options{}, mailboxtest.IMAPOptions{Debug: tr})
		const user = "backlog@example.com"
		id := b.addMailbox(t, "Backlog", user, b.tokens.IssueRefreshToken(clientID, user), "after_fetch", "mark_seen")
		const n = 450
		for i := 1; i <= n; i++ {
			b.deliver(t, user, mail(i, ""))
		}
		sum, err := b.runner.RunOnce(context.Background())
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, int64(n), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
		require.Equal(t, int64(n), count(t, db, "SELECT count(DISTINCT message_id) FROM ticket_messages WHERE mailbox_id = ?", id))
		// Stored in UID order: row ids follow the source keys.
		require.Equal(t, int64(0), count(t, db, `SELECT count(*) FROM ticket_messages a JOIN ticket_messages b
			ON a.mailbox_id = b.mailbox_id AND a.id < b.id
			WHERE a.mailbox_id = ? AND CAST(substr(a.source_key, 14) AS integer) > CAST(substr(b.source_key, 14) AS integer)`, id))
		require.Equal(t, n, seenCount(t, b, user))

		cmds := commands(tr)
		// One FETCH lists the new UIDs; the bodies come in batches of
		// store.MaxBatch.
		batches := (n + store.MaxBatch - 1) / store.MaxBatch
		require.Equal(t, 1+batches, cmds["UID FETCH"], "%v", cmds)
		require.LessOrEqual(t, cmds["UID STORE"], batches+1, "%v", cmds)

		// Nothing new: nothing fetched.
		sum, err = b.runner.RunOnce(context.Background())
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, int64(n), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
	})
}

// TestLargeMessagesAmongSmallOnes: a message past the batch limit is
// fetched on its own between the batches before and after it, and the
// cursor still moves in order.
func TestLargeMessagesAmongSmallOnes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tr := &logtest.Buffer{}
		b := setupWith(t, db, oauthtest.Options{}, mailboxtest.IMAPOptions{Debug: tr})
		const user = "mixed@example.com"
		id := b.addMailbox(t, "Mixed", user, b.tokens.IssueRefreshToken(clientID, user), "after_fetch", "delete")
		big := bigMail(3 << 20)
		for i := 1; i <= 30; i++ {
			b.deliver(t, user, mail(i, ""))
			if i%10 == 0 {
				b.deliver(t, user, strings.Replace(big, "<big@", fmt.Sprintf("<big%d@", i), 1))
			}
		}
		sum, err := b.runner.RunOnce(context.Background())
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, int64(33), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id))
		require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ? AND size_bytes >= ?", id, len(big)))
		require.Equal(t, 0, folderSize(t, b, user, "INBOX"), "every message stored, so every one deleted")
		var last int64
		require.NoError(t, db.QueryRow(context.Background(), "SELECT last_uid FROM mailbox_cursors WHERE mailbox_id = ?", []any{id}, &last))
		require.Equal(t, int64(33), last)
		// A batch of ten, the large one alone, and so on; plus the listing.
		require.Equal(t, 1+3+3, commands(tr)["UID FETCH"], "%v", commands(tr))
	})
}
