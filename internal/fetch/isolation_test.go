package fetch_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// TestPanicInOneMailbox: a panic while fetching one mailbox becomes that
// mailbox's error; the others are fetched. Not parallel: the hook is
// global.
func TestPanicInOneMailbox(t *testing.T) {
	fetch.SetFetchHook(t, func(mb store.Mailbox) {
		if mb.Name == "Broken" {
			panic("token=" + mb.RefreshToken)
		}
	})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		broken := b.addMailbox(t, "Broken", "broken@example.com", b.tokens.IssueRefreshToken(clientID, "broken@example.com"))
		fine := b.addMailbox(t, "Fine", "fine@example.com", b.tokens.IssueRefreshToken(clientID, "fine@example.com"))
		b.deliver(t, "fine@example.com", mail(1, ""))

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.Len(t, sum.Failed, 1)
		require.Contains(t, sum.Failed, broken)
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", fine))

		mb, err := db.Mailboxes().Get(ctx, broken)
		require.NoError(t, err)
		require.Equal(t, store.StatusFailing, mb.Status)
		require.Contains(t, mb.LastError, "internal error while fetching")
		require.NotContains(t, mb.LastError+b.logs.String(), mb.RefreshToken)
		require.Contains(t, b.logs.String(), "bug: fetching the mailbox panicked")
	})
}

// TestEncryptedSecretsInAPass: with a key configured, plain values an
// admin inserted are encrypted by the first pass, the rotated refresh
// token is stored encrypted, and a mailbox whose ciphertext was tampered
// with gets a last_error naming the column while the others run.
func TestEncryptedSecretsInAPass(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		keys, err := secret.NewKeyring(bytes.Repeat([]byte{7}, secret.KeySize))
		require.NoError(t, err)
		b := setup(t, db)
		ctx := context.Background()
		rt := b.tokens.IssueRefreshToken(clientID, "a@example.com")
		a := b.addMailbox(t, "A", "a@example.com", rt)
		c := b.addMailbox(t, "C", "c@example.com", b.tokens.IssueRefreshToken(clientID, "c@example.com"))
		db.SetKeyring(keys) // the key arrives after the admin's INSERTs
		b.deliver(t, "a@example.com", mail(1, ""))
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET client_secret = 'enc:v1:"+keys.PrimaryID()+":AAAA' WHERE id = ?", c))

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.Len(t, sum.Failed, 1)
		require.Contains(t, sum.Failed, c)
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", a))

		for _, col := range []string{"client_secret", "refresh_token", "access_token"} {
			var v string
			require.NoError(t, db.QueryRow(ctx, "SELECT "+col+" FROM mailboxes WHERE id = ?", []any{a}, &v))
			require.True(t, secret.IsSealed(v), "%s stored as %.20q", col, v)
		}
		got, err := db.Mailboxes().Get(ctx, a)
		require.NoError(t, err)
		require.NotEqual(t, rt, got.RefreshToken, "the rotated token is stored")

		var lastError string
		require.NoError(t, db.QueryRow(ctx, "SELECT last_error FROM mailboxes WHERE id = ?", []any{c}, &lastError))
		require.Contains(t, lastError, "client_secret cannot be decrypted")
		require.Contains(t, lastError, "Do this:")
	})
}
