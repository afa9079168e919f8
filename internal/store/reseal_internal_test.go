package store

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/secret"
)

// TestResealKeepsATokenRotatedMeanwhile: a plain value is read, then
// another worker stores a rotated token before the read's in-place
// sealing runs. The sealing must not put the old token back.
func TestResealKeepsATokenRotatedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, m := sqliteForTest(t)
	keys, err := secret.NewKeyring(bytes.Repeat([]byte{1}, secret.KeySize))
	require.NoError(t, err)
	db.SetKeyring(keys)

	read := m
	read.RefreshToken = "Old-1"
	stale, err := db.openSecrets(&read)
	require.NoError(t, err)
	require.Len(t, stale, 1)
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET refresh_token = 'Rotated-2' WHERE id = ?", m.ID))
	n, err := db.reseal(db.gorm, m.ID, stale)
	require.NoError(t, err)
	require.Zero(t, n, "the value read is gone: nothing to seal")
	got, err := db.Mailboxes().Get(ctx, m.ID)
	require.NoError(t, err)
	require.Equal(t, "Rotated-2", got.RefreshToken)

	// Had the value stayed, it would have been sealed.
	read.RefreshToken = "Rotated-2"
	stale, err = db.openSecrets(&read)
	require.NoError(t, err)
	n, err = db.reseal(db.gorm, m.ID, stale)
	require.NoError(t, err)
	require.Zero(t, n, "Get above sealed it already")
}
